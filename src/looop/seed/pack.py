"""The sensor pack: shipped recipes (seed/recipes/KIND.sh) that `looop sensor add KIND …` fills
in and writes into sensors/. A recipe's values reach its script only as shell-quoted words on
lines of their own (`REPO='/a b'`), never spliced into code, and a value with a control
character (a newline would end the quoting's line) is refused."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from looop.home.errors import LooopError
from looop.home.where import program_on
from looop.seed import package_text


@dataclass(frozen=True)
class Param:
    """One value a recipe takes: `--name VALUE` on the command line, @NAME@ in the script."""

    name: str
    help: str
    default: str | None = None  # None: required
    is_path: bool = False  # made absolute where the command runs (a sensor runs in the data dir)


@dataclass(frozen=True)
class Recipe:
    kind: str
    summary: str
    example: str
    interval: int  # seconds between runs (the `# looop:interval=N` header)
    params: tuple[Param, ...]


_REPO = Param("repo", "the repository's directory", ".", is_path=True)
RECIPES: dict[str, Recipe] = {
    r.kind: r
    for r in (
        Recipe(
            "git",
            "a repository's branch, dirty, ahead/behind its upstream, last commit",
            "looop sensor add git --repo PATH [--fetch]",
            60,
            (_REPO, Param("fetch", "fetch the upstream first (yes/no)", "no")),
        ),
        Recipe(
            "http",
            "a URL's status and latency bucket (fast, ok, slow, very-slow)",
            "looop sensor add http --url URL",
            60,
            (Param("url", "the http:// or https:// URL"),),
        ),
        Recipe(
            "disk",
            "how full a path's file system is, in buckets (…, 80-90%, 90-95%, 95-100%)",
            "looop sensor add disk [--path PATH]",
            300,
            (Param("path", "a path on the file system", ".", is_path=True),),
        ),
        Recipe(
            "file",
            "whether a file's content or a directory's entries changed",
            "looop sensor add file --path PATH",
            30,
            (Param("path", "the file or directory", is_path=True),),
        ),
        Recipe(
            "tests",
            "a test command's pass/fail and the names that fail",
            "looop sensor add tests --cmd 'pytest -q' [--dir PATH]",
            900,
            (
                Param("cmd", "the test command (run by bash)"),
                Param("dir", "where it runs", ".", is_path=True),
            ),
        ),
        Recipe(
            "github",
            "open pull requests (checks, review state) and issues assigned to you, via gh",
            "looop sensor add github [--repo OWNER/NAME] [--dir PATH]",
            300,
            (
                Param("repo", "OWNER/NAME (default: the repository gh finds in --dir)", ""),
                Param("dir", "where gh runs", ".", is_path=True),
            ),
        ),
    )
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_REPO_NAME = re.compile(r"(?:[A-Za-z0-9_.-]+/)?[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def recipe(kind: str) -> Recipe:
    try:
        return RECIPES[kind]
    except KeyError:
        raise LooopError(
            f"no sensor recipe '{kind}' — one of {', '.join(RECIPES)} (`looop sensor add --list`)"
        ) from None


def render(kind: str, values: Mapping[str, str], cwd: str, interval: int | None = None) -> str:
    """The recipe's script with `values` (by param name) filled in, defaults for the rest; a
    path is taken from `cwd` (where the command runs), as the one who typed it meant."""
    r = recipe(kind)
    known = {p.name for p in r.params}
    extra = sorted(set(values) - known)
    if extra:
        raise LooopError(
            f"--{extra[0]} does not apply to a {kind} sensor — it takes "
            + (", ".join(f"--{p.name}" for p in r.params) or "no values")
        )
    every = r.interval if interval is None else interval
    if every < 1:
        raise LooopError(f"--every {every}: give the seconds between runs, 1 or more")
    filled = {"INTERVAL": str(every)}
    for p in r.params:
        value = values.get(p.name, p.default)
        if value is None:
            raise LooopError(f"a {kind} sensor needs --{p.name} ({p.help}) — e.g. {r.example}")
        _check(kind, p.name, value)
        if p.is_path:
            value = os.path.normpath(os.path.join(cwd, value))
        filled[p.name.upper()] = value
    watched = _watches(kind, filled)
    words = {k: v if k == "INTERVAL" else shlex.quote(v) for k, v in filled.items()}
    words["WATCH"] = "\n".join(f"# looop:watch={w}" for w in watched if not _CONTROL.search(w))
    # one pass: a value holding `@DIR@` stays as typed
    text = package_text("recipes", f"{kind}.sh")
    return re.sub(r"@([A-Z]+)@", lambda m: words.get(m[1], m[0]), text)


def _watches(kind: str, filled: Mapping[str, str]) -> list[str]:
    """What a sensor of this kind reads, for `# looop:watch=` (a change there wakes the pulse):
    a file sensor's path; a tests sensor's folder (its entries, not below); a git sensor's HEAD
    and index in its git dir (a worktree's `.git` file names it), and its branches and packed
    refs in the common dir (where a worktree's are)."""
    if kind == "file":
        return [filled["PATH"]]
    if kind == "tests":
        return [filled["DIR"]]
    if kind != "git":
        return []
    top = _repo_top(filled["REPO"]) or filled["REPO"]
    gitdir = os.path.join(top, ".git")
    try:
        with open(gitdir, encoding="utf-8", errors="replace") as f:
            line = f.read(4096).partition("\n")[0]
        if line.startswith("gitdir:"):
            gitdir = os.path.normpath(os.path.join(top, line[7:].strip()))
    except OSError:  # a folder (or none yet): the git dir itself
        pass
    common = gitdir
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8", errors="replace") as f:
            common = os.path.normpath(os.path.join(gitdir, f.read(4096).strip()))
    except OSError:
        pass
    return [
        os.path.join(gitdir, "HEAD"),
        os.path.join(gitdir, "index"),
        os.path.join(common, "refs", "heads"),
        os.path.join(common, "packed-refs"),
    ]


def _check(kind: str, name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise LooopError(
            f"--{name} holds a newline or another control character — give it on one line"
        )
    if kind == "http" and not _URL.fullmatch(value):
        raise LooopError(f"--url {value!r} is not an http:// or https:// URL")
    if kind == "git" and name == "fetch" and value not in ("yes", "no"):
        raise LooopError(f"--fetch {value!r}: say yes or no")
    if kind == "github" and name == "repo" and value and not _REPO_NAME.fullmatch(value):
        raise LooopError(f"--repo {value!r} is not OWNER/NAME (or HOST/OWNER/NAME)")
    if kind == "tests" and name == "cmd" and not value.strip():
        raise LooopError("--cmd is empty — give the test command, e.g. --cmd 'pytest -q'")


def offers(cwd: str, search_path: str, have: set[str]) -> list[str]:
    """The `looop sensor add …` lines that fit what is here (`init` prints them): a git
    repository at or above `cwd`, gh on `search_path`; a sensor already named so is left out."""
    top = _repo_top(cwd)
    lines = []
    if top is not None and "git" not in have:
        lines.append(f"looop sensor add git --repo {shlex.quote(top)}")
    if program_on("gh", search_path) and "github" not in have:
        where = f" --dir {shlex.quote(top)}" if top is not None else ""
        lines.append(f"looop sensor add github{where}")
    return lines


def _repo_top(cwd: str) -> str | None:
    here = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        up = os.path.dirname(here)
        if up == here:
            return None
        here = up
