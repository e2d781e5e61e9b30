"""`looop shot`, `send` and `key`: what both faces share (the click commands in
cli/sessions.py and the click-free fast path in cli/main.py), and the fast face itself.

The fast face serves only a live session of this data dir asked for in a plain spelling:
its supervisor renders the screen and takes the input, so neither click nor the emulator
(pyte) is needed. A dead session (its log replayed through pyte), a remote worker, an id or
a flag it does not take plainly, all go to click, which words every error."""

from __future__ import annotations

import os

from looop.cli.plain import echo
from looop.core import ljson, where
from looop.sessions import ops
from looop.sessions.protocol import SHOT_FORMATS
from looop.sessions.wire import live, valid_id

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

SHOT_FLAGS = frozenset({"--json", "--ansi", "--plain", "--trim", "--no-trim"})
SEND_FLAGS = frozenset({"-n", "--no-enter", "--no-newline", "--json"})
KEY_FLAGS = frozenset({"--json"})


def remote_record(data: str, sid: str) -> bool:
    """Whether `sid` is a worker the home started on another host (hosts/workers/<id>.json):
    one stat, so a data dir without hosts pays nothing for asking."""
    return os.path.exists(os.path.join(data, "hosts", "workers", f"{sid}.json"))


def typed(words: Sequence[str], no_enter: bool) -> str:
    """What `send` types: the words, then Enter unless -n. Enter is CR, as a terminal sends it
    (and as steer_session does): raw-mode agent TUIs submit on it, line-mode programs read a
    newline (the PTY maps CR to NL)."""
    return " ".join(words) + ("" if no_enter else "\r")


def shot_text(shot: dict[str, Any], fmt: str) -> str:
    """The line `shot` prints: the screen object as JSON, else the screen's text."""
    return ljson.dumps(shot, sort_keys=True) if fmt == "json" else str(shot["text"])


def reply_json(reply: dict[str, Any]) -> str:
    """`send --json` / `key --json`: the supervisor's reply ({"sent", "offset"})."""
    return ljson.dumps(reply, sort_keys=True)


# -- the fast face ---------------------------------------------------------------------------


def _split(rest: list[str], flags: frozenset[str]) -> tuple[list[str], list[str]] | None:
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


def _plain_id(raw: str, drive: bool) -> bool:
    """An id the fast face takes as it is: valid, no `looop-` prefix or blanks to strip and,
    for a verb that types, not the pulse (click words that refusal)."""
    if raw != raw.strip() or raw.startswith("looop-") or not valid_id(raw):
        return False
    return not (drive and raw == "pulse")


def _format_opts(rest: list[str]) -> tuple[list[str], str | None] | None:
    """`rest` without its `--format X` / `--format=X` options, and the last value given (click
    keeps the last); None for a value click would refuse. Stops at `--`."""
    out: list[str] = []
    fmt = None
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            return out + rest[i:], fmt
        if word == "--format" or word.startswith("--format="):
            if word == "--format":
                if i + 1 >= len(rest):
                    return None
                value = rest[i + 1]
                i += 1
            else:
                value = word[len("--format=") :]
            if value not in SHOT_FORMATS:
                return None
            fmt = value
        else:
            out.append(word)
        i += 1
    return out, fmt


def parse_shot(argv: list[str]) -> tuple[str, str, bool] | None:
    """(id, format, trim) for the plain spellings of `shot`; else None."""
    got = _format_opts(argv[1:])
    if got is None:
        return None
    rest, fmt = got
    split = _split(rest, SHOT_FLAGS)
    if split is None or len(split[1]) != 1 or not _plain_id(split[1][0], False):
        return None
    seen, (sid,) = split
    trims = [f for f in seen if f in ("--trim", "--no-trim")]
    trim = not trims or trims[-1] == "--trim"
    fmt = fmt or ("json" if "--json" in seen else "ansi" if "--ansi" in seen else "plain")
    return sid, fmt, trim


def parse_send(argv: list[str]) -> tuple[str, str, bool] | None:
    """(id, the text to type, --json) for the plain spellings of `send`; else None."""
    split = _split(argv[1:], SEND_FLAGS)
    if split is None or len(split[1]) < 2 or not _plain_id(split[1][0], True):
        return None
    seen, args = split
    no_enter = any(f != "--json" for f in seen)
    return args[0], typed(args[1:], no_enter), "--json" in seen


def parse_key(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """(id, key names, --json) for the plain spellings of `key`; else None."""
    split = _split(argv[1:], KEY_FLAGS)
    if split is None or len(split[1]) < 2 or not _plain_id(split[1][0], True):
        return None
    seen, args = split
    return args[0], args[1:], bool(seen)


def _live_here(data: str, sid: str) -> bool:
    """A session of this data dir that runs now (no remote worker's record names it)."""
    return not remote_record(data, sid) and live(data, sid) is True


def serve(argv: list[str], env: Mapping[str, str]) -> bool:
    """`shot`, `send` or `key` on a live local session; False (nothing done, click's turn) for
    anything else."""
    verb = argv[0]
    if verb == "send":
        sent = parse_send(argv)
        if sent is None:
            return False
        data = where.resolve(env, os.getcwd())[0]
        if not _live_here(data, sent[0]):
            return False
        reply = ops.send(data, sent[0], sent[1], False)
        if sent[2]:
            echo(reply_json(reply))
        return True
    if verb == "key":
        keys = parse_key(argv)
        if keys is None:
            return False
        data = where.resolve(env, os.getcwd())[0]
        if not _live_here(data, keys[0]):
            return False
        reply = ops.send_keys(data, keys[0], keys[1])
        if keys[2]:
            echo(reply_json(reply))
        return True
    shot = parse_shot(argv)
    if shot is None:
        return False
    data = where.resolve(env, os.getcwd())[0]
    if not _live_here(data, shot[0]):
        return False
    screen = ops.live_screenshot(data, *shot)
    if screen is None:
        return False  # it ended just now: click replays its log
    echo(shot_text(screen, shot[1]))
    return True
