"""The human session verbs that watch output, over any `Backend`, by polling its log offset
and screen: `log` (whole, tail, grep), `log -f`, `expect` and `wait-idle` for a worker
whose session is not on this machine's disk (a Kubernetes pod). The local verbs read
`output.log` directly (sessions/logs.py, sessions/client.py) and keep their own loops.

A backend out of reach is not an end: the verbs keep polling (said once through `note`) until
their own deadline, as `wait` does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import islice
from typing import Any, cast

from looop.home.clock import Clock
from looop.sessions.logs import compile_pattern
from looop.sessions.state import SessionError
from looop.workers.backend import Backend, Reach, Say
from looop.workers.errors import Refused

POLL_S = 0.5  # each poll costs API calls: slower than a local log's 0.1 s
EXPECT_WINDOW = 1 << 20  # as the local expect: a match must fit in the last 1 MiB read
MAX_READS = 64  # one whole-log read: at most this many chunks (4 MiB each)


def _read_on(b: Backend, sid: str, offset: int, raw: bool) -> Iterator[tuple[str, int]]:
    """Each read of the log from `offset` as far as it goes now: (its text, where it ends)."""
    while True:
        text, new = b.log(sid, offset, raw)
        if new == offset:
            return
        yield text, new
        offset = new


def whole(b: Backend, sid: str, raw: bool) -> str:
    """The log from its start, chunk by chunk, as far as it goes now."""
    return "".join(text for text, _ in islice(_read_on(b, sid, 0, raw), MAX_READS + 1))


def tail(b: Backend, sid: str, lines: int | None, raw: bool, grep: str | None) -> str:
    """`log [--tail N] [--grep RE]`: the last lines (all when None), those matching only;
    the last N alone read from about the log's end (polledtail)."""
    if lines is not None and grep is None:
        return last_lines(b, sid, lines, raw)
    pat = compile_pattern(grep) if grep else None
    picked = [r for r in _lines(whole(b, sid, raw), False) if pat is None or pat.search(r)]
    if lines is not None:
        picked = picked[-lines:] if lines > 0 else []
    return "\n".join(picked)


def _end_code(b: Backend, sid: str) -> int:
    try:
        code = b.exit_status(sid)
    except SessionError:
        code = None  # gone with its record (a collected Job): nothing to report
    return 0 if code is None else code


def follow(
    b: Backend, sid: str, since: int, raw: bool, out: Say, note: Say, poll_s: float = POLL_S
) -> int:
    """`log -f`: print new text until the worker is over; its exit code."""
    offset = max(0, since)
    said = False
    while True:
        over = b.reach(sid) == "over"  # read before the log: a final read follows an end
        try:
            for text, at in _read_on(b, sid, offset, raw):
                offset = at
                if text:
                    out(text)
        except SessionError as e:
            if over:
                return _end_code(b, sid)
            if not said:
                note(f"{e} — still following")
                said = True
        if over:
            return _end_code(b, sid)
        time.sleep(poll_s)


def expect(
    b: Backend,
    sid: str,
    pattern: str,
    *,
    since: int | None,
    from_now: bool,
    screen: bool,
    raw: bool,
    timeout_s: float | None,
    clock: Clock,
    poll_s: float = POLL_S,
) -> tuple[int, str | None, int]:
    """(0 matched | 1 the worker ended first | 124 timeout, the match, the offset read to)."""
    pat = compile_pattern(pattern)
    deadline = None if timeout_s is None or timeout_s <= 0 else clock.monotonic() + timeout_s
    offset = max(0, since or 0)
    if since is None and from_now:
        try:
            offset = len(whole(b, sid, True).encode())
        except SessionError:
            offset = 0  # nothing readable yet: everything still to come is new
    acc = ""
    while True:
        over = b.reach(sid) == "over"
        try:
            if screen:
                text = str(b.screen(sid, "plain", True).get("text", ""))
                if m := pat.search(text):
                    return 0, m.group(0), offset
            else:
                for text, at in _read_on(b, sid, offset, raw):
                    offset = at
                    acc = (acc + text)[-EXPECT_WINDOW:]
                    if m := pat.search(acc):
                        return 0, m.group(0), offset
        except SessionError:
            pass  # not readable now (no pod yet, the API out of reach): try again
        if over:
            return 1, None, offset
        if deadline is not None and clock.monotonic() >= deadline:
            return 124, None, offset
        time.sleep(poll_s)


def wait_idle(
    b: Backend,
    sid: str,
    settle_s: float,
    timeout_s: float | None,
    clock: Clock,
    poll_s: float = POLL_S,
) -> bool:
    """True once the log has not grown for `settle_s` (or the worker is over); False at the
    timeout."""
    deadline = None if timeout_s is None or timeout_s <= 0 else clock.monotonic() + timeout_s
    offset = 0
    quiet_since = clock.monotonic()
    while True:
        if b.reach(sid) == "over":
            return True
        try:
            for _, at in _read_on(b, sid, offset, True):
                offset = at
                quiet_since = clock.monotonic()  # it grew: the quiet starts again
        except SessionError:
            pass  # not readable now: the quiet is judged on what was read
        if clock.monotonic() - quiet_since >= settle_s:
            return True
        if deadline is not None and clock.monotonic() >= deadline:
            return False
        time.sleep(min(poll_s, max(0.05, settle_s / 2)))


class Polled:
    """The watching verbs and a kill's second look for an engine whose worker's log is not
    on this disk (SSH, Kubernetes): this module's loops over the engine's own reads."""

    clock: Clock

    def _me(self) -> Backend:
        return cast("Backend", self)

    def look(self, sid: str) -> Reach:
        """A worker away is known by the home's record of it (its backend is found by it)."""
        return self._me().reach(sid)

    def known(self, sid: str) -> None:
        """Known by the home's record of it, as `look`'s: its host is not asked."""

    def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
        raise Refused(
            f"worker {sid} runs away from home: its output is not read here byte by byte — "
            f"`looop shot {sid}` shows its screen, `looop log {sid}` its text"
        )

    def tail(self, sid: str, lines: int | None, raw: bool, grep: str | None) -> str:
        return tail(self._me(), sid, lines, raw, grep)

    def follow(self, sid: str, since: int, raw: bool, out: Say, note: Say) -> int:
        return follow(self._me(), sid, since, raw, out, note)

    def expect(self, sid: str, pattern: str, **how: Any) -> tuple[int, str | None, int]:
        return expect(self._me(), sid, pattern, clock=self.clock, **how)

    def wait_idle(self, sid: str, settle_s: float, timeout_s: float | None) -> bool:
        return wait_idle(self._me(), sid, settle_s, timeout_s, self.clock)

    def found_over(self, sid: str, err: SessionError) -> str | None:
        if self._me().reach(sid) == "over":  # level-triggered: an ended worker is a success
            return f"worker {sid} was already over ({err})"
        return None


# -- the last lines of a log whose reads cross a network: through the backend's one read, a
# chunk of text from an offset. A log of one chunk is read whole; a longer one's end is found
# first (a read past the end gives nothing, a read that reaches it comes back short), so what
# crosses is about its tail, not all of it.

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
