"""Follow one session's output.log through looop's own emulator, with bounded scrollback.

The screen is `looop.sessions.screen.SessionScreen` fed by its `FastStream` (what `looop shot`
replays); the only addition is `ScrollbackScreen.index`, which keeps the rows a full-screen
scroll pushes off the top. Bytes are read from the log into a pending buffer and emulated in
time-boxed slices so a big replay never freezes the UI.

A worker away from home has no log here: `ShotFeed` holds the screen its backend's screenshot
gives (JSON cells), replaced whole at each look, painted the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import avt

from looop.sessions.screen import REPLAY_MAX, Row, Screen, carried_modes, color_of, sgr_color

HISTORY = 2000  # scrollback rows kept per session
SLICE = 16 * 1024  # bytes per emulation step
MODE_SCAN = 1024 * 1024  # log before the replayed tail scanned for alt-screen/cursor modes


class _Rows:
    """What the pane reads from a feed: its screen's rows after its scrollback."""

    screen: Screen

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.columns, self.screen.lines

    def line_count(self) -> int:
        return len(self.screen.history) + self.screen.lines

    def used_line_count(self) -> int:
        """Lines up to the last one that shows something (or holds the cursor): a session
        taller than the pane is shown down to here, not down to its blank bottom rows."""
        screen = self.screen
        cursor = screen.cursor
        last = cursor.y if not cursor.hidden else -1
        view = screen.view()
        for y in range(screen.lines - 1, last, -1):
            if any(_shows(c) for c in view[y].cells):
                last = y
                break
        return len(screen.history) + last + 1

    def row(self, index: int) -> Row | None:
        """Scrollback rows first, then the screen's; None past the end."""
        hist = self.screen.history
        if index < len(hist):
            return hist[index]
        view = self.screen.view()
        at = index - len(hist)
        return view[at] if at < len(view) else None


# (since, most) -> (where the bytes start, the output's end, the bytes): a worker's raw output
# by logical offsets, as its Backend's `output` reads it (home/logfiles.output_at here)
Output = Callable[[int | None, int], tuple[int, int, bytes]]


class SessionFeed(_Rows):
    """The emulated terminal of one session, kept up to date from its output, read through
    `read` (its worker's Backend)."""

    def __init__(
        self,
        sid: str,
        read: Output,
        cols: int,
        rows: int,
        started_at: str,
        now: Callable[[], float],
        history: int = HISTORY,
    ) -> None:
        self.sid = sid
        self.read = read
        self.started_at = started_at
        self.screen = Screen(max(2, cols), max(2, rows), history)
        self.offset = 0  # log bytes read so far
        self.pending = bytearray()
        self.skipped = 0  # log bytes never emulated (before the replayed tail, bursts)
        self._now = now

    def open(self) -> None:
        """Queue the output's tail (at most REPLAY_MAX bytes, from a line start) for replay,
        with the alternate-screen and cursor modes the unreplayed part before it left set.
        Offsets are the session's logical ones: a rotation (logfiles.py) moves no byte."""
        lo, size, data = self.read(None, REPLAY_MAX + MODE_SCAN)
        start = max(lo, size - REPLAY_MAX)
        before, data = data[: start - lo], data[start - lo :]
        if start > 0:
            self.screen.reset(*carried_modes(before))
            data = _from_line_start(data)
        self.offset = size
        self.skipped = size - len(data)
        self.pending += data

    def poll(self) -> bool | None:
        """Queue what the output gained since the last look. True when there is something to
        emulate, False when not, None when it shrank or vanished (replaced: reopen)."""
        start, size, data = self.read(self.offset, REPLAY_MAX)  # a burst: only its tail matters
        if size < self.offset:
            return None
        if size > self.offset:
            if start > self.offset:  # bytes rotated away or past the burst's tail go unseen
                whole = len(data)
                data = _from_line_start(data)  # a part line's bytes go unseen too
                dropped = bytes(self.pending)
                self.pending.clear()
                self._skip(start - self.offset + whole - len(data) + len(dropped), dropped)
            self.offset = size
            self.pending += data
            if len(self.pending) > REPLAY_MAX:  # emulation fell behind: keep the tail
                cut = len(self.pending) - REPLAY_MAX
                self._skip(cut, bytes(self.pending[:cut]))
                del self.pending[:cut]
        return bool(self.pending)

    def _skip(self, nbytes: int, dropped: bytes) -> None:
        """`nbytes` of output go unseen: mark the gap, restart the screen clean with the
        alternate-screen/cursor modes the dropped bytes (as far as read) left set."""
        alt: int | None = 1049 if self.screen.alternate else None
        hidden = self.screen.cursor.hidden
        if dropped:
            seen_alt, seen_hidden = carried_modes(dropped)
            if seen_alt is not None:
                alt = seen_alt if seen_alt > 0 else None
            if seen_hidden is not None:
                hidden = seen_hidden
        self.skipped += nbytes
        self.screen.note(f"··· {nbytes} bytes of output skipped ···")
        self.screen.reset(alt, hidden)

    def pump(self, budget_s: float) -> bool:
        """Emulate pending bytes for about `budget_s`; True when nothing is left."""
        deadline = self._now() + budget_s
        while self.pending:
            chunk = bytes(self.pending[:SLICE])
            del self.pending[:SLICE]
            self.screen.feed(chunk)
            if self._now() >= deadline:
                break
        return not self.pending

    def resize(self, cols: int, rows: int) -> None:
        """Follow a `looop resize` (what was emulated before stays as it was drawn)."""
        if (cols, rows) != self.size and cols >= 2 and rows >= 2:
            self.screen.resize(cols, rows)


class ShotFeed(_Rows):
    """A remote worker's screen as a screenshot (`shot --format json`) gives it: no
    scrollback, nothing to emulate; each look replaces it whole."""

    pending = b""  # never anything left to emulate

    def __init__(self, sid: str, cols: int = 80, rows: int = 24) -> None:
        self.sid = sid
        self.screen = Screen(max(2, cols), max(2, rows))
        self.hash: str | None = None

    def apply(self, shot: dict[str, Any]) -> bool:
        """Paint a screenshot's cells on a fresh screen; False when nothing changed since
        the last one. A cell's text is drawn only when printable (it came from afar)."""
        cols, rows = int(shot.get("cols") or 80), int(shot.get("rows") or 24)
        cur = shot.get("cursor") or {}
        key = f"{shot.get('screen_hash')}|{cols}x{rows}|{cur}|{len(shot.get('cells') or [])}"
        if key == self.hash:
            return False
        self.hash = key
        screen = self.screen = Screen(max(2, cols), max(2, rows))
        paint: list[str] = []
        for c in shot.get("cells") or []:
            y, x, text = int(c.get("row", -1)), int(c.get("col", -1)), str(c.get("char", " "))
            if 0 <= y < screen.lines and 0 <= x < screen.columns and text.isprintable():
                params = [code for key, code in _FLAGS if c.get(key)]
                params += sgr_color(color_of(c.get("fg")), 30)
                params += sgr_color(color_of(c.get("bg")), 40)
                paint.append(f"\x1b[{y + 1};{x + 1}H\x1b[{';'.join(['0', *params])}m{text[:2]}")
        y, x = int(cur.get("row", 0)), int(cur.get("col", 0))
        paint.append(f"\x1b[0m\x1b[{y + 1};{x + 1}H" + ("\x1b[?25l" if cur.get("hidden") else ""))
        screen.write("".join(paint))
        return True


_FLAGS = (("bold", "1"), ("italic", "3"), ("underline", "4"), ("inverse", "7"))


def _shows(c: avt.Cell) -> bool:
    return c.char != " " or c.pen.background is not None or c.pen.inverse


def _from_line_start(data: bytes) -> bytes:
    """A tail cut mid-stream starts at its first line start (when one is near)."""
    nl = data.find(b"\n", 0, 4096)
    return data[nl + 1 :] if nl >= 0 else data
