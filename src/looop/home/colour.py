"""Colour on a terminal: whether a verb paints, and the painting (ANSI SGR)."""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping

_SGR = {"green": "32", "yellow": "33", "red": "31", "dim": "2"}


def colour_on(tty: bool, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal; never with NO_COLOR set (as the event log) or TERM=dumb."""
    return tty and "NO_COLOR" not in env and env.get("TERM") != "dumb"


def paint(text: str, colour: str | None, on: bool) -> str:
    return f"\x1b[{_SGR[colour]}m{text}\x1b[0m" if on and colour else text
