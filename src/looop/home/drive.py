"""`looop shot`, `send`, `key` and `log`: what their faces share (the click commands in
cli/sessions.py and cli/sessionwatch.py, and the click-free faces verbs/screen.py for shot,
send and key, verbs/log.py for log): the words they print, how a plain spelling is read,
where the session lives.

A worker on an SSH host gets the same argv run there (verbs/away.py), as click's face would. A
dead session's screen (its log replayed through pyte), a Kubernetes worker, an
id or a flag a fast face does not take plainly, all go to click, which words every error."""

from __future__ import annotations

import os

from looop.home import jsonio, where
from looop.home.sessionfiles import valid_id

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def remote_record(data: str, sid: str) -> bool:
    """Whether `sid` is a worker the home started on another host (hosts/workers/<id>.json):
    one stat, so a data dir without hosts pays nothing for asking."""
    return os.path.exists(os.path.join(data, where.HOSTS, where.HOST_WORKERS, f"{sid}.json"))


def typed(words: Sequence[str], no_enter: bool) -> str:
    """What `send` types: the words, then Enter unless -n. Enter is CR, as a terminal sends it
    (and as steer_session does): raw-mode agent TUIs submit on it, line-mode programs read a
    newline (the PTY maps CR to NL)."""
    return " ".join(words) + ("" if no_enter else "\r")


def shot_text(shot: dict[str, Any], fmt: str) -> str:
    """The line `shot` prints: the screen object as JSON, else the screen's text."""
    return jsonio.dumps(shot, sort_keys=True) if fmt == "json" else str(shot["text"])


def reply_json(reply: dict[str, Any]) -> str:
    """`send --json` / `key --json`: the supervisor's reply ({"sent", "offset"})."""
    return jsonio.dumps(reply, sort_keys=True)


# -- how a plain spelling is read, and where ---------------------------------------------


def split_flags(rest: list[str], flags: frozenset[str]) -> tuple[list[str], list[str]] | None:
    """(flags, arguments) as click reads them: a known flag anywhere before `--`, every word
    after it an argument. None (click's turn) for any other word that starts with `-`."""
    seen: list[str] = []
    args: list[str] = []
    for i, word in enumerate(rest):
        if word == "--":
            return seen, args + rest[i + 1 :]
        if word in flags:
            seen.append(word)
        elif word.startswith("-"):
            return None
        else:
            args.append(word)
    return seen, args


def plain_id(raw: str, drive: bool) -> bool:
    """An id the fast face takes as it is: valid, no `looop-` prefix or blanks to strip and,
    for a verb that types, not the pulse (click words that refusal)."""
    if raw != raw.strip() or raw.startswith("looop-") or not valid_id(raw):
        return False
    return not (drive and raw == "pulse")


def value_options(
    rest: list[str], names: frozenset[str]
) -> tuple[list[str], dict[str, str]] | None:
    """`rest` without its options that take a value (`NAME VALUE`, or `NAME=VALUE` for a long
    name) and the last value of each (click keeps the last), up to `--`. None (click's turn)
    where a value is missing or starts with `-`."""
    out: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            return out + rest[i:], values
        name, eq, value = word.partition("=")
        if word in names:
            if i + 1 >= len(rest):
                return None
            i += 1
            value = rest[i]
        elif not (eq and name in names and name.startswith("--")):
            out.append(word)
            i += 1
            continue
        if value.startswith("-"):
            return None
        values[name] = value
        i += 1
    return out, values


def log_text(text: str) -> str:
    """What `log` writes of the lines it read: ending in a newline, nothing when empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def data_dir(env: Mapping[str, str]) -> str:
    """The data dir, resolved only once the argv is one the fast face takes (click says what
    is wrong with the argv before it says HOME is unset)."""
    return where.resolve(env, os.getcwd())[0]
