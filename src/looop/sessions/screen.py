"""The emulated terminal behind screenshots and `watch`: asciinema's avt (through pyavt).

* `Screen`: an avt terminal fed bytes (UTF-8 decoded across chunk edges), with the rows the
  main screen scrolls off kept when asked (`watch`'s scrollback) and the alternate-screen and
  cursor state a screenshot reports;
* `Emulator`: the lazy feeder the supervisor uses. Output is kept pending as the chunks it came
  in (never copied) and emulated on demand (a screenshot) or in time-boxed background slices.
  When pending output outgrows `PENDING_MAX` it is cut to its last `PENDING_KEEP` bytes and the
  screen is reset first (lossy by design, like a dead-session replay: the tail of a burst
  repaints the screen; the alternate-screen and cursor-visibility state of the dropped part is
  carried over).
* the renders a screenshot offers (plain, ansi, json) and its `screen_hash`.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import avt

ALT_MODES = (47, 1047, 1049)
_ED3 = "\x1b[3J"  # "erase saved lines": the program asks for an empty scrollback
_IN_ALTERNATE = "\x9b?1047h"  # how avt's dump says its alternate buffer is active


Row: TypeAlias = avt.Line | str  # a screen's or scrollback's row; a str is a note (output unseen)


@dataclass(frozen=True)
class Cursor:
    x: int
    y: int
    hidden: bool


class Screen:
    """An avt terminal of `columns` x `lines` fed bytes; with `history`, it keeps up to that
    many rows scrolled off the top of the main screen (an app on the alternate screen
    repaints in place and adds none), and notes (a str row) where output went unseen."""

    def __init__(self, columns: int, lines: int, history: int = 0) -> None:
        self.vt = avt.Vt(columns, lines, scrollback_limit=0)
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self.history: deque[Row] = deque(maxlen=max(0, history))
        self.dropped = 0  # rows that ever fell off the front of a full history
        self._view: list[avt.Line] | None = None  # the visible rows, until the next change

    @property
    def columns(self) -> int:
        return self.vt.size[0]

    @property
    def lines(self) -> int:
        return self.vt.size[1]

    @property
    def alternate(self) -> bool:
        return _IN_ALTERNATE in self.vt.dump()

    @property
    def cursor(self) -> Cursor:
        c = self.vt.cursor
        return Cursor(min(c.col, self.columns - 1), min(c.row, self.lines - 1), not c.visible)

    def view(self) -> list[avt.Line]:
        if self._view is None:
            self._view = self.vt.view()
        return self._view

    def rows(self) -> list[str]:
        return [line.text.rstrip() for line in self.view()]

    def feed(self, data: bytes) -> None:
        self.write(self._utf8.decode(data))

    def write(self, text: str) -> None:
        self._view = None
        if not self.history.maxlen:
            self.vt.feed_str(text)
            return
        at = text.rfind(_ED3)
        if at >= 0:
            self._keep(self.vt.feed_str(text[:at])[1])
            self.history.clear()
            text = text[at:]
        self._keep(self.vt.feed_str(text)[1])

    def _keep(self, rows: Sequence[Row]) -> None:
        if self.history.maxlen:
            self.dropped += max(0, len(self.history) + len(rows) - self.history.maxlen)
            self.history.extend(rows)

    def note(self, text: str) -> None:
        """A dim marker row in the scrollback (e.g. where output was skipped)."""
        self._keep([text[: self.columns]])

    def reset(self, alt: int | None = None, hidden: bool | None = False) -> None:
        """A fresh terminal of the same size (history kept), in the modes given."""
        self.vt = avt.Vt(self.columns, self.lines, scrollback_limit=0)
        self._view = None
        self._utf8.reset()
        alt_on = f"\x1b[?{alt}h" if alt is not None and alt > 0 else ""
        self.vt.feed_str(alt_on + ("\x1b[?25l" if hidden else ""))

    def resize(self, columns: int, lines: int) -> None:
        if (columns, lines) != self.vt.size:
            self._view = None
            self._keep(self.vt.resize(columns, lines)[1])


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


def _line_start(data: bytes, cut: int) -> int:
    """Where to cut `data` at `cut` or a little after: the start of a line if one is near."""
    nl = data.find(b"\n", cut, cut + 4096)
    return nl + 1 if nl >= 0 else cut


_EDGE = 32  # longer than any mode switch `carried_modes` looks for


class Emulator:
    """A screen fed lazily from pending output (see the module docstring). Pending output is
    held as the chunks the pump took in (the same objects its backlog holds): a burst costs
    an append per chunk and, past PENDING_MAX, dropping references and one memchr for ESC
    over what is dropped, never a copy."""

    def __init__(self, cols: int, rows: int) -> None:
        self.screen = Screen(cols, rows)
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
        at = _line_start(first, cut)
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
            self._hidden = self.screen.cursor.hidden
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
        self.screen.reset(self._alt, bool(self._hidden))

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
            self.screen.feed(first[start:end])
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
            self.screen.feed(data)

    def resize(self, cols: int, rows: int) -> None:
        self.feed_all()
        self.screen.resize(cols, rows)

    def render(self, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        self.feed_all()
        return render(self.screen, fmt, trim)


def replay(data: bytes, cols: int, rows: int) -> Screen:
    """A fresh screen fed with (the tail of) a transcript: the dead-session screenshot."""
    screen = Screen(cols, rows)
    if len(data) > REPLAY_MAX:
        at = _line_start(data, len(data) - REPLAY_MAX)
        screen.reset(*carried_modes(memoryview(data)[:at]))
        data = data[at:]
    screen.feed(data)
    return screen


# -- renders ------------------------------------------------------------------------------


def screen_hash(rows: list[str]) -> str:
    """Stable across processes (never Python's hash()); color-only changes keep it."""
    h = hashlib.blake2b(digest_size=8)
    for row in rows:
        h.update(row.encode("utf-8", "replace"))
        h.update(b"\n")
    return h.hexdigest()


def _trimmed(rows: list[str]) -> list[str]:
    end = len(rows)
    while end > 0 and not rows[end - 1]:
        end -= 1
    return rows[:end]


def color_name(color: avt.Color) -> str:
    """A cell's colour as a screenshot names it: `idxN` (the palette) or `#rrggbb`."""
    if isinstance(color, avt.Color.Indexed):
        return f"idx{color[0]}"
    assert isinstance(color, avt.Color.RGB)
    return f"#{color[0]:02x}{color[1]:02x}{color[2]:02x}"


def color_of(name: object) -> avt.Color | None:
    """The colour a screenshot names (`idxN`, `#rrggbb`); None for the default or junk."""
    text = str(name or "")
    if text.startswith("idx") and text[3:].isdigit() and int(text[3:]) < 256:
        return avt.Color.Indexed(int(text[3:]))
    if len(text) == 7 and text[0] == "#":
        try:
            return avt.Color.RGB(*(int(text[k : k + 2], 16) for k in (1, 3, 5)))
        except ValueError:
            return None
    return None


def sgr_color(color: avt.Color | None, base: int) -> list[str]:
    """SGR parameters for a colour; base 30 = foreground, 40 = background."""
    if color is None:
        return []
    if isinstance(color, avt.Color.Indexed):
        n = color[0]
        if n < 8:
            return [str(base + n)]
        if n < 16:
            return [str(base + 60 + n - 8)]
        return [str(base + 8), "5", str(n)]
    assert isinstance(color, avt.Color.RGB)
    return [str(base + 8), "2", str(color[0]), str(color[1]), str(color[2])]


_SGR_FLAGS = {"bold": "1", "faint": "2", "italic": "3", "underline": "4", "blink": "5",
              "inverse": "7", "strikethrough": "9"}  # fmt: skip
_CELL_FLAGS = ("bold", "italic", "underline", "inverse")  # what a json cell names


def sgr(pen: avt.Pen) -> list[str]:
    if pen.is_default():
        return []
    out = [code for attr, code in _SGR_FLAGS.items() if getattr(pen, attr)]
    return out + sgr_color(pen.foreground, 30) + sgr_color(pen.background, 40)


def _row_ansi(line: avt.Line) -> str:
    cells = [(c.char, sgr(c.pen)) for c in line.cells if c.width]
    last = max((x for x, (ch, style) in enumerate(cells) if ch != " " or style), default=-1)
    parts: list[str] = []
    current: list[str] = []
    for ch, style in cells[: last + 1]:
        if style != current:
            parts.append("\x1b[" + ";".join(["0", *style]) + "m")
            current = style
        parts.append(ch)
    if current:
        parts.append("\x1b[0m")
    return "".join(parts)


def _cells(screen: Screen) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    for y, line in enumerate(screen.view()):
        for x, c in enumerate(line.cells):
            if not c.width or (c.char == " " and c.pen.is_default()):
                continue  # the right half of a wide character, or nothing to show
            cell: dict[str, Any] = {"row": y, "col": x, "char": c.char}
            pen = c.pen
            for key, color in (("fg", pen.foreground), ("bg", pen.background)):
                if color is not None:
                    cell[key] = color_name(color)
            cell.update((key, True) for key in _CELL_FLAGS if getattr(pen, key))
            if c.char != " " or len(cell) > 3:
                cells.append(cell)
    return cells


def render(screen: Screen, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
    """The screenshot object: rows, cols, cursor, alternate_screen, screen_hash + text|cells."""
    rows = screen.rows()
    cursor = screen.cursor
    out: dict[str, Any] = {
        "format": fmt,
        "rows": screen.lines,
        "cols": screen.columns,
        "cursor": {"row": cursor.y, "col": cursor.x, "hidden": cursor.hidden},
        "alternate_screen": screen.alternate,
        "screen_hash": screen_hash(rows),
    }
    if fmt == "plain":
        out["text"] = "\n".join(_trimmed(rows) if trim else rows)
    elif fmt == "ansi":
        count = len(_trimmed(rows)) if trim else screen.lines
        out["text"] = "\n".join(_row_ansi(line) for line in screen.view()[:count]) + "\x1b[0m"
    elif fmt == "json":
        out["cells"] = _cells(screen)
    else:
        raise ValueError(f"unknown screenshot format {fmt!r} (use plain, ansi or json)")
    return out
