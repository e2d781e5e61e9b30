"""`looop shot`, `send`, `key` and `log`: what both faces share (the click commands in
cli/sessions.py and cli/sessionwatch.py, and the click-free fast path in hot/main.py), and the
fast face itself.

The fast face serves shot, send and key only for a live session of this data dir asked for
in a plain spelling: its supervisor renders the screen and takes the input, so neither click
nor the emulator (pyte) is needed. `log` reads the log from disk, live or not. A worker on
an SSH host gets the same argv run there (remote/ssh/link.py), as click's face would. A
dead session's screen (its log replayed through pyte), a Kubernetes worker, an id or a flag
it does not take plainly, all go to click, which words every error."""

from __future__ import annotations

import os
import sys

from looop.hot import ljson, where
from looop.hot.plain import echo
from looop.hot.wire import live, valid_id

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from looop.hot.clock import Clock

SHOT_FLAGS = frozenset({"--json", "--ansi", "--plain", "--trim", "--no-trim"})
SEND_FLAGS = frozenset({"-n", "--no-enter", "--no-newline", "--json"})
KEY_FLAGS = frozenset({"--json"})
LOG_OPTIONS = frozenset({"-n", "--tail", "--grep"})


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


def _options(rest: list[str], names: frozenset[str]) -> tuple[list[str], dict[str, str]] | None:
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


def parse_shot(argv: list[str]) -> tuple[str, str, bool] | None:
    """(id, format, trim) for the plain spellings of `shot`; else None."""
    got = _options(argv[1:], frozenset({"--format"}))
    if got is None:
        return None
    rest, values = got
    fmt = values.get("--format")
    from looop.hot.protocol import SHOT_FORMATS  # lazy: `log` needs no protocol (struct)

    if fmt is not None and fmt not in SHOT_FORMATS:
        return None
    split = _split(rest, SHOT_FLAGS)
    if split is None or len(split[1]) != 1 or not _plain_id(split[1][0], False):
        return None
    seen, (sid,) = split
    if (
        len({f for f in seen if f in ("--json", "--ansi", "--plain")} | ({fmt} if fmt else set()))
        > 1
    ):
        return None  # two formats asked for: click refuses them in its words
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


def parse_log(argv: list[str]) -> tuple[str, int | None, bool, str | None] | None:
    """(id, --tail, --raw, --grep) for the plain spellings of `log`: -f, --since and --json
    (and anything else) are click's."""
    got = _options(argv[1:], LOG_OPTIONS)
    if got is None:
        return None
    rest, values = got
    tail = values.get("--tail", values.get("-n"))
    if "--tail" in values and "-n" in values:
        return None  # which came last is click's to know
    # a count params.count() takes: plain digits, under its MAX_COUNT of 10^9
    if tail is not None and not (tail.isascii() and tail.isdigit() and len(tail) <= 9):
        return None
    split = _split(rest, frozenset({"--raw"}))
    if split is None or len(split[1]) != 1 or not _plain_id(split[1][0], False):
        return None
    seen, (sid,) = split
    return sid, None if tail is None else int(tail), bool(seen), values.get("--grep")


def log_text(text: str) -> str:
    """What `log` writes of the lines it read: ending in a newline, nothing when empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def _here(argv: list[str], env: Mapping[str, str], sid: str) -> str | None:
    """The data dir when `sid` is a session of it that runs now. A worker on an SSH host gets
    the verb there (this does not return); None: click's turn."""
    data = _data(env)
    if remote_record(data, sid):
        _far(argv, env, data, sid)
        return None
    return data if live(data, sid) is True else None


def _far(argv: list[str], env: Mapping[str, str], data: str, sid: str) -> bool:
    """A worker on an SSH host: the very verb runs there (its fast face too), its output
    streams here and its exit code is this one's — this does not return. False (click's
    turn): a Kubernetes worker, whose backend click's face drives from here."""
    # lazy: only a worker on another host needs the link (subprocess, the host registry)
    from pathlib import Path

    from looop.remote import hosts as reg
    from looop.remote.ssh.link import Link, link_at

    name = reg.host_of(Path(data), sid)
    if name is None:
        return False
    h = reg.lookup(Path(data), name)
    if not isinstance(h, reg.Host):
        return False
    lk = link_at(Path(data), h)
    raise SystemExit(Link(Path(data), h, dict(env), lk.bin).passthrough(argv))


def _data(env: Mapping[str, str]) -> str:
    """The data dir, resolved only once the argv is one the fast face takes (click says what
    is wrong with the argv before it says HOME is unset)."""
    return where.resolve(env, os.getcwd())[0]


def _log(argv: list[str], env: Mapping[str, str]) -> bool:
    got = parse_log(argv)
    if got is None:
        return False
    data = _data(env)
    if remote_record(data, got[0]):
        return _far(argv, env, data, got[0])
    from looop.hot.logs import log_tail  # lazy: only log reads it (re: its filter)

    sys.stdout.write(log_text(log_tail(data, *got)))
    return True


def _typed_in(argv: list[str], env: Mapping[str, str], got: tuple[Any, ...] | None) -> bool:
    """`send` or `key` parsed as (id, what to type, --json): typed into the live session."""
    if got is None:
        return False
    sid, what, as_json = got
    data = _here(argv, env, sid)
    if data is None:
        return False
    from looop.hot import ops  # lazy: `log` talks to no supervisor (_socket, struct)

    reply = (
        ops.send(data, sid, what, False) if argv[0] == "send" else ops.send_keys(data, sid, what)
    )
    if as_json:
        echo(reply_json(reply))
    return True


def _send(argv: list[str], env: Mapping[str, str]) -> bool:
    return _typed_in(argv, env, parse_send(argv))


def _key(argv: list[str], env: Mapping[str, str]) -> bool:
    return _typed_in(argv, env, parse_key(argv))


def _shot(argv: list[str], env: Mapping[str, str]) -> bool:
    shot = parse_shot(argv)
    if shot is None:
        return False
    data = _here(argv, env, shot[0])
    if data is None:
        return False
    from looop.hot import ops  # lazy: `log` talks to no supervisor (_socket, struct)

    screen = ops.live_screenshot(data, *shot)
    if screen is None:
        return False  # it ended just now: click replays its log
    echo(shot_text(screen, shot[1]))
    return True


_VERBS = {"log": _log, "logs": _log, "send": _send, "key": _key}


def serve(
    argv: list[str], env: Mapping[str, str], clock: Clock | None = None, caller: int | None = None
) -> bool:
    """`shot` (`ss`, `screenshot`), `send` or `key` on a live local session, `log` of a local
    one; False (nothing done, click's turn) for anything else."""
    return _VERBS.get(argv[0], _shot)(argv, env)
