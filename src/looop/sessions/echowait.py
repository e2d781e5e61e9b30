"""The supervisor's `echo` request: wait until a line typed into the session shows on its
screen, woken by the session's own output (never a poll), for at most the request's timeout.
sessions/client.send presses a typed line's Enter once this answers: an agent TUI that reads the
text and its Enter in one read takes them as a paste and never submits the line, and a program
that does not echo (`stty -echo`) gets its Enter when the timeout ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from looop.runners import enter_gap
from looop.sessions.evloop import Future, Loop, within
from looop.sessions.lifecycle import OpError

if TYPE_CHECKING:
    from looop.sessions.pump import Pump

ECHO_MAX_S = 10.0  # the longest wait a request may ask: a caller waits on its socket as long
TAIL_MAX = 64  # the end of a typed line that must show: a few characters are plenty


def _fields(req: dict[str, Any]) -> tuple[str, int, float]:
    tail, offset, timeout = req.get("tail"), req.get("offset"), req.get("timeout")
    if not isinstance(tail, str) or not tail or len(tail) > TAIL_MAX:
        raise OpError(f"invalid request: echo needs a `tail` of 1 to {TAIL_MAX} characters")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise OpError("invalid request: echo needs an `offset` (a log size, >= 0)")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise OpError("invalid request: echo needs a `timeout` in seconds")
    return tail, offset, min(max(float(timeout), 0.0), ECHO_MAX_S)


def shown(pump: Pump, tail: str, offset: int) -> bool:
    """Output came after `offset` and the screen (its lines joined, spaces dropped: a wrapped
    line still matches) shows `tail`."""
    if pump.log_size <= offset:
        return False
    text = str(pump.render("plain", True).get("text", ""))
    return tail in "".join(text.split())


async def await_echo(
    loop: Loop, pump: Pump, final: Future, req: dict[str, Any], argv: Sequence[str] = ()
) -> dict[str, Any]:
    """{"echoed": True} once `tail` shows and then the gap of the CLI `argv` runs passed (it
    takes an Enter read sooner as a newline: home/runners.enter_gap); False at the timeout
    or when the session ends."""
    tail, offset, timeout = _fields(req)
    deadline = loop.time() + timeout
    while not shown(pump, tail, offset):
        left = deadline - loop.time()
        if left <= 0 or final.done():
            return {"echoed": False}
        woke = loop.future()
        pump.hearing.add(woke)

        def ended(_f: Future, woke: Future = woke) -> None:
            woke.set_result(None)

        final.add_done_callback(ended)
        try:
            await within(loop, woke, left)
        finally:
            pump.hearing.discard(woke)
            final.remove_done_callback(ended)  # a long session's later sends add their own
    gap = enter_gap(argv)
    if gap > 0 and not final.done():
        await within(loop, final, gap)  # the gap, or the session's end if that comes first
    return {"echoed": True}
