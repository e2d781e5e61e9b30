"""`looop shot` (`ss`, `screenshot`), `send` and `key` without click: the fast face for a live
session of this data dir asked for in a plain spelling. Its supervisor renders the screen and
takes the input (home/control.py), so neither click nor the emulator (pyte) is needed; anything
else (a dead session, an odd flag) is click's (home/drive.py says what both faces share)."""

from __future__ import annotations

from looop.home import control
from looop.home.drive import (
    plain_id,
    reply_json,
    shot_text,
    split_flags,
    typed,
    value_options,
)
from looop.home.plain import echo
from looop.home.protocol import SHOT_FORMATS
from looop.verbs.away import live_here

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from looop.home.clock import Clock

SHOT_FLAGS = frozenset({"--json", "--ansi", "--plain", "--trim", "--no-trim"})
SEND_FLAGS = frozenset({"-n", "--no-enter", "--no-newline", "--json"})
KEY_FLAGS = frozenset({"--json"})


def parse_shot(argv: list[str]) -> tuple[str, str, bool] | None:
    """(id, format, trim) for the plain spellings of `shot`; else None."""
    got = value_options(argv[1:], frozenset({"--format"}))
    if got is None:
        return None
    rest, values = got
    fmt = values.get("--format")
    if fmt is not None and fmt not in SHOT_FORMATS:
        return None
    split = split_flags(rest, SHOT_FLAGS)
    if split is None or len(split[1]) != 1 or not plain_id(split[1][0], False):
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
    split = split_flags(argv[1:], SEND_FLAGS)
    if split is None or len(split[1]) < 2 or not plain_id(split[1][0], True):
        return None
    seen, args = split
    no_enter = any(f != "--json" for f in seen)
    return args[0], typed(args[1:], no_enter), "--json" in seen


def parse_key(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """(id, key names, --json) for the plain spellings of `key`; else None."""
    split = split_flags(argv[1:], KEY_FLAGS)
    if split is None or len(split[1]) < 2 or not plain_id(split[1][0], True):
        return None
    seen, args = split
    return args[0], args[1:], bool(seen)


def _typed_in(argv: list[str], env: Mapping[str, str], got: tuple[Any, ...] | None) -> bool:
    """`send` or `key` parsed as (id, what to type, --json): typed into the live session."""
    if got is None:
        return False
    sid, what, as_json = got
    data = live_here(argv, env, sid)
    if data is None:
        return False
    reply = (
        control.send(data, sid, what, False)
        if argv[0] == "send"
        else control.send_keys(data, sid, what)
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
    data = live_here(argv, env, shot[0])
    if data is None:
        return False
    screen = control.live_screenshot(data, *shot)
    if screen is None:
        return False  # it ended just now: click replays its log
    echo(shot_text(screen, shot[1]))
    return True


_VERBS = {"send": _send, "key": _key}


def serve(argv: list[str], env: Mapping[str, str], clock: Clock | None = None) -> bool:
    """`shot` (`ss`, `screenshot`), `send` or `key` on a live local session; False (nothing
    done, click's turn) for anything else."""
    return _VERBS.get(argv[0], _shot)(argv, env)
