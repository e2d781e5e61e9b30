"""The emulated terminal behind screenshots: pyte plus what a session needs from it.

pyte is a pure-Python VT emulator and slow (~0.5 MB/s stock), so this module adds:
* `SessionScreen`: a pyte Screen with the alternate screen (private modes 47/1047/1049), colors
  kept as `idxN` / `#rrggbb`, and a fast path for printable ASCII runs;
* `FastStream` (in vtstream.py): a ByteStream that parses whole CSI sequences with one regex
  match (the stock parser is a generator fed one character at a time), swallows DCS/APC/PM/SOS
  strings, and carries an unfinished trailing sequence over to the next chunk;
* `Emulator`: the lazy feeder the supervisor uses. Output is kept pending as the chunks it came
  in (never copied) and emulated on demand (a screenshot) or in time-boxed background slices.
  When pending output outgrows `PENDING_MAX` it is cut to its last `PENDING_KEEP` bytes and the
  screen is reset first (lossy by design, like a dead-session replay: the tail of a burst
  repaints the screen; the alternate-screen and cursor-visibility state of the dropped part is
  carried over).
The renders (plain, ansi, json, screen_hash) are in shot.py.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Any

# The parser (vtstream.py) and the renders (shot.py) live next door; their names stay
# importable from here, where the tui and the tests look for them.
from looop.sessions.shot import FORMATS as FORMATS
from looop.sessions.shot import plain_rows as plain_rows
from looop.sessions.shot import render as render
from looop.sessions.shot import screen_hash as screen_hash
from looop.sessions.vtscreen import ALT_MODES as ALT_MODES
from looop.sessions.vtscreen import IGNORED_PRIVATE as IGNORED_PRIVATE
from looop.sessions.vtscreen import SessionScreen as SessionScreen
from looop.sessions.vtstream import FastStream as FastStream

PENDING_MAX = 128 * 1024
PENDING_KEEP = 32 * 1024
REPLAY_MAX = 1024 * 1024  # a dead session replays at most this much of its log tail


_MODE_SEQ = re.compile(rb"\x1b\[\?([0-9;]+)([hl])")


def carried_modes(dropped: bytes | bytearray | memoryview) -> tuple[int | None, bool | None]:
    """(last alt-screen switch: +mode enter / -mode leave / None, cursor hidden or None) in a
    dropped span, found by scanning backwards so huge spans stay cheap."""
    alt: int | None = None
    hidden: bool | None = None
    pos = len(dropped)
    window = 64 * 1024
    while pos > 0 and (alt is None or hidden is None):
        start = max(0, pos - window)
        chunk = bytes(dropped[start : min(len(dropped), pos + 32)])
        for m in reversed(list(_MODE_SEQ.finditer(chunk))):
            if start + m.start() >= pos:
                continue
            on = m.group(2) == b"h"
            for p in reversed(m.group(1).split(b";")):
                code = int(p) if p else 0
                if alt is None and code in ALT_MODES:
                    alt = code if on else -code
                if hidden is None and code == 25:
                    hidden = not on
            if alt is not None and hidden is not None:
                break
        pos = start
    return alt, hidden


def _cut_point(data: bytes | bytearray, keep: int) -> int:
    """Where to start replaying so that about `keep` bytes remain, preferably at a line start."""
    if len(data) <= keep:
        return 0
    cut = len(data) - keep
    nl = data.find(b"\n", cut, cut + 4096)
    return nl + 1 if nl >= 0 else cut


_EDGE = 32  # longer than any mode switch `carried_modes` looks for


class Emulator:
    """A screen fed lazily from pending output (see the module docstring). Pending output is
    held as the chunks the pump took in (the same objects its backlog holds): a burst costs
    an append per chunk and, past PENDING_MAX, dropping references and one memchr for ESC
    over what is dropped, never a copy."""

    def __init__(self, cols: int, rows: int) -> None:
        self.screen = SessionScreen(cols, rows)
        self.stream = FastStream(self.screen)
        self.pending: deque[bytes] = deque()  # not yet emulated, oldest first
        self.head = 0  # where in pending[0] emulation resumes
        self.pending_bytes = 0
        self.skipped = 0  # bytes never emulated because of a cut (for diagnostics)
        # A cut only marks the screen for a reset; the reset happens at the next feed, so a
        # long burst costs one reset, not one per cut.
        self._reset_due = False
        self._alt: int | None = None  # last alt-screen switch seen in dropped bytes
        self._hidden: bool | None = None  # last cursor visibility seen in dropped bytes
        self._edge = b""  # the last bytes dropped: a mode switch may straddle two chunks

    def push(self, data: bytes) -> None:
        if not data:
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > PENDING_MAX:
            self._cut(PENDING_KEEP)

    def _cut(self, keep: int) -> None:
        """Drop all but about the last `keep` pending bytes, from a line start if one is near."""
        pending = self.pending
        while self.pending_bytes - (len(pending[0]) - self.head) >= keep:
            first = pending.popleft()  # whole chunks: only a reference goes
            self._dropped(first, self.head, len(first))
            self.pending_bytes -= len(first) - self.head
            self.head = 0
        first = pending[0]
        cut = self.head + self.pending_bytes - keep
        if cut <= self.head:
            return
        nl = first.find(b"\n", cut, cut + 4096)
        at = nl + 1 if nl >= 0 else cut
        self._dropped(first, self.head, at)
        self.pending_bytes -= at - self.head
        self.head = at
        if at >= len(first):
            pending.popleft()
            self.head = 0

    def _dropped(self, data: bytes, start: int, end: int) -> None:
        """data[start:end] will never be emulated: remember the modes it switched."""
        if end <= start:
            return
        if not self._reset_due:
            self._reset_due = True
            self._alt = 1049 if self.screen.alternate else None
            self._hidden = bool(self.screen.cursor.hidden)
        alt: int | None = None
        hidden: bool | None = None
        # memchr for ESC first: plain-text bursts skip the mode scan entirely.
        if data.find(b"\x1b", start, end) >= 0 and data.find(b"\x1b[?", start, end) >= 0:
            alt, hidden = carried_modes(memoryview(data)[start:end])
        if (alt is None or hidden is None) and b"\x1b" in self._edge:
            # a switch that began in the previous dropped piece and ends in this one
            joint = self._edge + data[start : min(end, start + _EDGE)]
            j_alt, j_hidden = carried_modes(joint)
            alt = j_alt if alt is None else alt
            hidden = j_hidden if hidden is None else hidden
        if alt is not None:
            self._alt = alt if alt > 0 else None
        if hidden is not None:
            self._hidden = hidden
        self._edge = data[max(start, end - _EDGE) : end]
        self.skipped += end - start

    def _apply_reset(self) -> None:
        self._reset_due = False
        reset_emulation(self.screen, self.stream)
        if self._alt is not None:
            self.screen.enter_alternate(self._alt)
        self.screen.cursor.hidden = bool(self._hidden)

    def feed_some(self, budget_s: float, now: Callable[[], float], slice_size: int = 8192) -> bool:
        """Emulate pending bytes for about `budget_s`; True when nothing is left."""
        deadline = now() + budget_s
        if self._reset_due:
            self._apply_reset()
        pending = self.pending
        while pending:
            first = pending[0]
            start = self.head
            end = min(len(first), start + slice_size)
            if end >= len(first):
                pending.popleft()
                self.head = 0
            else:
                self.head = end
            self.pending_bytes -= end - start
            self.stream.feed(first[start:end])
            if now() >= deadline:
                break
        return not pending

    def feed_all(self) -> None:
        if self._reset_due:
            self._apply_reset()
        if self.pending:
            pending = self.pending
            first = pending.popleft()
            data = b"".join((first[self.head :], *pending))
            pending.clear()
            self.head = self.pending_bytes = 0
            self.stream.feed(data)

    def resize(self, cols: int, rows: int) -> None:
        self.feed_all()
        self.screen.resize(rows, cols)

    def render(self, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        self.feed_all()
        return render(self.screen, fmt, trim)


def reset_emulation(screen: SessionScreen, stream: FastStream) -> None:
    screen.reset()
    stream.reset_parser()


def replay(data: bytes, cols: int, rows: int) -> SessionScreen:
    """A fresh screen fed with (the tail of) a transcript: the dead-session screenshot."""
    emu = Emulator(cols, rows)
    if len(data) > REPLAY_MAX:
        at = _cut_point(data, REPLAY_MAX)
        alt, hidden = carried_modes(memoryview(data)[:at])
        if alt is not None and alt > 0:
            emu.screen.enter_alternate(alt)
        if hidden is not None:
            emu.screen.cursor.hidden = hidden
        data = data[at:]
    emu.stream.feed(data)
    return emu.screen
