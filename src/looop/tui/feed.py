"""Follow one session's output.log through looop's own emulator, with bounded scrollback.

The screen is `looop.sessions.screen.SessionScreen` fed by its `FastStream` (what `looop shot`
replays); the only addition is `ScrollbackScreen.index`, which keeps the rows a full-screen
scroll pushes off the top. Bytes are read from the log into a pending buffer and emulated in
time-boxed slices so a big replay never freezes the UI.

A worker away from home has no log here: `ShotFeed` holds the screen its backend's screenshot
gives (JSON cells), replaced whole at each look, painted the same way."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from pyte.screens import Char, Margins, StaticDefaultDict
from rich.cells import cell_len

from looop.sessions.screen import (
    REPLAY_MAX,
    FastStream,
    SessionScreen,
    carried_modes,
    reset_emulation,
)

HISTORY = 2000  # scrollback rows kept per session
SLICE = 16 * 1024  # bytes per emulation step
MODE_SCAN = 1024 * 1024  # log before the replayed tail scanned for alt-screen/cursor modes

Row = StaticDefaultDict[int, Char]


class ScrollbackScreen(SessionScreen):
    """SessionScreen + the rows scrolled off the top of the main screen (not the alternate
    one, whose apps repaint in place), at most `history` of them."""

    def __init__(self, columns: int, lines: int, history: int = HISTORY) -> None:
        self.history: deque[Row] = deque(maxlen=max(0, history))
        self.dropped = 0  # rows that ever fell off the front of a full history
        super().__init__(columns, lines)

    def _keep(self, row: Row) -> None:
        if not self.history.maxlen:
            return
        if len(self.history) == self.history.maxlen:
            self.dropped += 1
        self.history.append(row)

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0 and not self.alternate:
            # pyte drops this row object from the buffer right after: keeping it is safe.
            self._keep(self.buffer[top])
        super().index()

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        super().erase_in_display(how, *args, **kwargs)
        if how == 3:  # "erase saved lines": the program asked for an empty scrollback
            self.history.clear()

    def note(self, text: str) -> None:
        """A dim marker row in the scrollback (e.g. where output was skipped)."""
        d = self.default_char
        row: Row = StaticDefaultDict(d)
        for x, c in enumerate(text[: self.columns]):
            row[x] = d._replace(data=c, fg="idx8")
        self._keep(row)


class _Rows:
    """What the pane reads from a feed: its screen's rows after its scrollback."""

    screen: ScrollbackScreen

    def line_count(self) -> int:
        return len(self.screen.history) + self.screen.lines

    def used_line_count(self) -> int:
        """Lines up to the last one that shows something (or holds the cursor): a session
        taller than the pane is shown down to here, not down to its blank bottom rows."""
        screen = self.screen
        last = screen.cursor.y if not screen.cursor.hidden else -1
        buffer = screen.buffer
        for y in range(screen.lines - 1, last, -1):
            row = buffer.get(y)  # .get: never create rows while looking
            if row and any(_shows(c) for c in row.values()):
                last = y
                break
        return len(screen.history) + last + 1

    def row(self, index: int) -> Row | None:
        """Scrollback rows first, then the screen's; None for a row never written."""
        hist = self.screen.history
        if index < len(hist):
            return hist[index]
        return self.screen.buffer.get(index - len(hist))


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
        self.screen = ScrollbackScreen(max(2, cols), max(2, rows), history)
        self.stream = FastStream(self.screen)
        self.offset = 0  # log bytes read so far
        self.pending = bytearray()
        self.skipped = 0  # log bytes never emulated (before the replayed tail, bursts)
        self._now = now

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.columns, self.screen.lines

    def open(self) -> None:
        """Queue the output's tail (at most REPLAY_MAX bytes, from a line start) for replay,
        with the alternate-screen and cursor modes the unreplayed part before it left set.
        Offsets are the session's logical ones: a rotation (logfiles.py) moves no byte."""
        lo, size, data = self.read(None, REPLAY_MAX + MODE_SCAN)
        start = max(lo, size - REPLAY_MAX)
        before, data = data[: start - lo], data[start - lo :]
        if start > 0:
            alt, hidden = carried_modes(before)
            if alt is not None and alt > 0:
                self.screen.enter_alternate(alt)
            if hidden is not None:
                self.screen.cursor.hidden = hidden
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
        hidden = bool(self.screen.cursor.hidden)
        if dropped:
            seen_alt, seen_hidden = carried_modes(dropped)
            if seen_alt is not None:
                alt = seen_alt if seen_alt > 0 else None
            if seen_hidden is not None:
                hidden = seen_hidden
        self.skipped += nbytes
        self.screen.note(f"··· {nbytes} bytes of output skipped ···")
        reset_emulation(self.screen, self.stream)
        if alt is not None:
            self.screen.enter_alternate(alt)
        self.screen.cursor.hidden = hidden

    def pump(self, budget_s: float) -> bool:
        """Emulate pending bytes for about `budget_s`; True when nothing is left."""
        deadline = self._now() + budget_s
        while self.pending:
            chunk = bytes(self.pending[:SLICE])
            del self.pending[:SLICE]
            self.stream.feed(chunk)
            if self._now() >= deadline:
                break
        return not self.pending

    def resize(self, cols: int, rows: int) -> None:
        """Follow a `looop resize` (what was emulated before stays as it was drawn)."""
        if (cols, rows) != self.size and cols >= 2 and rows >= 2:
            self.screen.resize(rows, cols)


class ShotFeed(_Rows):
    """A remote worker's screen as a screenshot (`shot --format json`) gives it: no
    scrollback, nothing to emulate; each look replaces it whole."""

    pending = b""  # never anything left to emulate

    def __init__(self, sid: str, cols: int = 80, rows: int = 24) -> None:
        self.sid = sid
        self.screen = ScrollbackScreen(max(2, cols), max(2, rows), history=0)
        self.hash: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.screen.columns, self.screen.lines

    def apply(self, shot: dict[str, Any]) -> bool:
        """Paint a screenshot's cells (a new size starts a new screen); False when nothing
        changed since the last one."""
        cols, rows = int(shot.get("cols") or 80), int(shot.get("rows") or 24)
        cur = shot.get("cursor") or {}
        key = f"{shot.get('screen_hash')}|{cols}x{rows}|{cur}|{len(shot.get('cells') or [])}"
        if key == self.hash:
            return False
        self.hash = key
        if (cols, rows) != self.size:
            self.screen = ScrollbackScreen(max(2, cols), max(2, rows), history=0)
        screen = self.screen
        screen.buffer.clear()
        d = screen.default_char
        for c in shot.get("cells") or []:
            y, x, text = int(c.get("row", -1)), int(c.get("col", -1)), str(c.get("char", " "))
            if not (0 <= y < screen.lines and 0 <= x < screen.columns):
                continue
            ch = d._replace(
                data=text,
                fg=c.get("fg") or "default",
                bg=c.get("bg") or "default",
                bold=bool(c.get("bold")),
                italics=bool(c.get("italic")),
                underscore=bool(c.get("underline")),
                reverse=bool(c.get("inverse")),
            )
            row = screen.buffer[y]
            row[x] = ch
            if cell_len(text) == 2 and x + 1 < screen.columns:
                row[x + 1] = ch._replace(data="")  # a wide character's right half
        screen.cursor.x = max(0, min(int(cur.get("col", 0)), screen.columns - 1))
        screen.cursor.y = max(0, min(int(cur.get("row", 0)), screen.lines - 1))
        screen.cursor.hidden = bool(cur.get("hidden"))
        return True


def _shows(c: Char) -> bool:
    return bool(c.data.strip()) or c.bg != "default" or bool(c.reverse)


def _from_line_start(data: bytes) -> bytes:
    """A tail cut mid-stream starts at its first line start (when one is near)."""
    nl = data.find(b"\n", 0, 4096)
    return data[nl + 1 :] if nl >= 0 else data
