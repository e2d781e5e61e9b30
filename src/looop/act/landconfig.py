"""The config's "land" object: how `looop land` lands a worker's change — "merge": "ff" (a
fast-forward, the default) or "merge" (a merge commit); "remote" the branch is pushed to for a
pull request ("origin"); "pr_command" the command that opens one, its words {branch}, {base},
{title}, {body} (a file), {remote} and {repo} (the remote's URL) filled in (never through a
shell); "pr_edit_command"
the command that rewrites an open request's body ({url}, {body}: a worker of several
repositories has each request link the others); "pr_timeout_s" how long the push and each
command may take. Read when a landing runs; a bad value is one line."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from looop.home.errors import LooopError

DEFAULT_PR = "gh pr create --head {branch} --base {base} --title {title} --body-file {body}"
DEFAULT_PR_EDIT = "gh pr edit {url} --body-file {body}"
_WORD = re.compile(r"\{(branch|base|title|body|remote|url|repo)\}")


@dataclass(frozen=True)
class LandConfig:
    merge: str = "ff"
    remote: str = "origin"
    pr_command: tuple[str, ...] = tuple(shlex.split(DEFAULT_PR))
    pr_timeout_s: float = 120.0
    pr_edit_command: tuple[str, ...] = tuple(shlex.split(DEFAULT_PR_EDIT))


def _bad(key: str, want: str, got: object) -> LooopError:
    return LooopError(f"config: land.{key} must be {want}, not {got!r} — fix the config")


def land_config(raw: dict[str, Any]) -> LandConfig:
    obj = raw.get("land", {})
    if not isinstance(obj, dict):
        raise LooopError(f"config: 'land' must be an object, not {obj!r} — fix the config")
    out = LandConfig()
    merge = obj.get("merge", out.merge)
    if merge not in ("ff", "merge"):
        raise _bad("merge", '"ff" or "merge"', merge)
    remote = obj.get("remote", out.remote)
    if not isinstance(remote, str) or not remote or remote.startswith("-"):
        raise _bad("remote", "a remote's name", remote)
    words = _line(obj, "pr_command", DEFAULT_PR)
    edit = _line(obj, "pr_edit_command", DEFAULT_PR_EDIT)
    limit = obj.get("pr_timeout_s", out.pr_timeout_s)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 1 <= limit <= 3600:
        raise _bad("pr_timeout_s", "seconds from 1 to 3600", limit)
    return LandConfig(merge, remote, words, float(limit), edit)


def _line(obj: dict[str, Any], key: str, default: str) -> tuple[str, ...]:
    line = obj.get(key, default)
    try:
        words = tuple(shlex.split(line)) if isinstance(line, str) else ()
    except ValueError:
        words = ()
    if not words:
        raise _bad(key, "a command line (e.g. " + default + ")", line)
    return words


def pr_argv(words: tuple[str, ...], fill: dict[str, str]) -> list[str]:
    """The PR command's argv: each word with its {…} filled in, never split again."""
    # one pass: a title holding "{body}" stays the title
    return [_WORD.sub(lambda m: fill[m.group(1)], word) for word in words]
