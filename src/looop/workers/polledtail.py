"""The last lines of a worker's log whose reads cross a network (workers/polled.py): through
the backend's one read, a chunk of text from an offset. A log of one chunk is read whole; a
longer one's end is found first (a read past the end gives nothing, a read that reaches it
comes back short), so what crosses is about its tail, not all of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.workers.backend import Backend

WINDOW = 64 << 10  # a log's tail is first read from this far before its end


def last_lines(b: Backend, sid: str, n: int, raw: bool = False) -> str:
    """The last `n` lines of worker `sid`'s log (ANSI stripped unless `raw`)."""
    if n <= 0:
        return ""
    text, off = b.log(sid, 0, raw)
    if not text:
        return ""
    more, nxt = b.log(sid, off, raw)
    if not more:
        return "\n".join(_lines(text, False)[-n:])
    end = _end(b, sid, raw, (off, nxt), chunk=off)
    want = WINDOW
    while True:
        start = max(0, end - want)
        got = _lines(_rest(b, sid, raw, start), start > 0)
        if len(got) >= n or start == 0:
            return "\n".join(got[-n:])
        want *= 4


def _end(b: Backend, sid: str, raw: bool, lo_read: tuple[int, int], chunk: int) -> int:
    """Where the log ends: `lo` is inside it and its read ended at `lo_next`. Doubling
    steps past lo until a read comes back empty, then halving between."""
    lo, lo_next = lo_read
    hi: int | None = None
    step = chunk
    for _ in range(96):  # ample for any size; a log growing as fast as it is read stops it
        if lo_next - lo < chunk // 2 and not b.log(sid, lo_next, raw)[0]:
            return lo_next  # that read reached the end
        if hi is None:
            at, step = lo + step, step * 2
        else:
            at = (lo + hi) // 2
        text, nxt = b.log(sid, at, raw)
        if text:
            lo, lo_next = at, nxt
        else:
            hi = at
    return lo_next


def _rest(b: Backend, sid: str, raw: bool, start: int) -> str:
    """The log from `start` to its end."""
    parts: list[str] = []
    off = start
    while True:
        text, nxt = b.log(sid, off, raw)
        if not text or nxt <= off:
            return "".join(parts)
        parts.append(text)
        off = nxt


def _lines(text: str, cut: bool) -> list[str]:
    """Lines as a log's tail gives them (no CR; the final newline ends a line, not one more);
    `cut`: the text starts mid-log, so its first piece is part of a line and is dropped."""
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[1:] if cut else lines
