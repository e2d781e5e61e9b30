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

import copy
import re
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, StaticDefaultDict
from wcwidth import wcwidth

# The parser (vtstream.py) and the renders (shot.py) live next door; their names stay
# importable from here, where the tui and the tests look for them.
from looop.sessions.shot import FORMATS as FORMATS
from looop.sessions.shot import plain_rows as plain_rows
from looop.sessions.shot import render as render
from looop.sessions.shot import screen_hash as screen_hash
from looop.sessions.vtstream import FastStream as FastStream

ALT_MODES = (47, 1047, 1049)
# Private modes the screen must not act on: DECCOLM (?3) would resize pyte's grid to 132
# columns while the PTY stays as it is (xterm ignores it by default too).
IGNORED_PRIVATE = (3,)

PENDING_MAX = 128 * 1024
PENDING_KEEP = 32 * 1024
REPLAY_MAX = 1024 * 1024  # a dead session replays at most this much of its log tail

_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def _blank_buffer(screen: pyte.Screen) -> dict[int, StaticDefaultDict[int, Char]]:
    return defaultdict(lambda: StaticDefaultDict[int, Char](screen.default_char))


class SessionScreen(pyte.Screen):
    """pyte.Screen + alternate screen + index colors + a fast ASCII draw path."""

    def __init__(self, columns: int, lines: int) -> None:
        self._main: dict[int, StaticDefaultDict[int, Char]] | None = None
        self._main_lines = lines
        self._saved_alt_cursor: pyte.screens.Cursor | None = None
        self._glyphs: dict[Char, dict[str, Char]] = {}
        super().__init__(columns, lines)

    # -- alternate screen ------------------------------------------------------------------
    @property
    def alternate(self) -> bool:
        return self._main is not None

    def enter_alternate(self, mode: int = 1049) -> None:
        if self._main is not None:
            if mode == 1049:
                self.buffer.clear()
            return
        if mode == 1049:
            self._saved_alt_cursor = copy.copy(self.cursor)
        self._main = self.buffer
        self._main_lines = self.lines
        self.buffer = _blank_buffer(self)
        self.dirty.update(range(self.lines))

    def leave_alternate(self, mode: int = 1049) -> None:
        main = self._main
        if main is None:
            return
        shift = self._main_lines - self.lines
        if shift > 0:  # the screen shrank meanwhile: drop from the top, as pyte's resize does
            moved = _blank_buffer(self)
            moved.update({y - shift: row for y, row in main.items() if y >= shift})
            main = moved
        for y in [y for y in main if y >= self.lines]:
            del main[y]
        for row in main.values():
            for x in [x for x in row if x >= self.columns]:
                del row[x]
        self.buffer = main
        self._main = None
        if mode == 1049 and self._saved_alt_cursor is not None:
            self.cursor = self._saved_alt_cursor
            self._saved_alt_cursor = None
            self.cursor.x = min(self.cursor.x, self.columns - 1)
            self.cursor.y = min(self.cursor.y, self.lines - 1)
        self.dirty.update(range(self.lines))

    def reset(self) -> None:
        self._main = None
        self._saved_alt_cursor = None
        super().reset()

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            for m in modes:
                if m in ALT_MODES:
                    self.enter_alternate(m)
            modes = tuple(m for m in modes if m not in ALT_MODES and m not in IGNORED_PRIVATE)
            if not modes:
                return
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            for m in modes:
                if m in ALT_MODES:
                    self.leave_alternate(m)
            modes = tuple(m for m in modes if m not in ALT_MODES and m not in IGNORED_PRIVATE)
            if not modes:
                return
        super().reset_mode(*modes, **kwargs)

    # -- colors ----------------------------------------------------------------------------
    def select_graphic_rendition(self, *attrs: int, **_kw: Any) -> None:
        """SGR keeping palette indexes (`idxN`) and truecolor (`#rrggbb`) apart."""
        if not attrs or attrs == (0,):
            self.cursor.attrs = self.default_char
            return
        rep: dict[str, Any] = {}
        queue = list(attrs)
        i = 0
        while i < len(queue):
            a = queue[i]
            i += 1
            if a == 0:
                d = self.default_char
                rep.update(
                    fg=d.fg,
                    bg=d.bg,
                    bold=False,
                    italics=False,
                    underscore=False,
                    strikethrough=False,
                    reverse=d.reverse,
                    blink=False,
                )
            elif a in _SGR_FLAGS:
                name, on = _SGR_FLAGS[a]
                rep[name] = on
            elif 30 <= a <= 37:
                rep["fg"] = f"idx{a - 30}"
            elif a == 39:
                rep["fg"] = "default"
            elif 40 <= a <= 47:
                rep["bg"] = f"idx{a - 40}"
            elif a == 49:
                rep["bg"] = "default"
            elif 90 <= a <= 97:
                rep["fg"] = f"idx{a - 90 + 8}"
            elif 100 <= a <= 107:
                rep["bg"] = f"idx{a - 100 + 8}"
            elif a in (38, 48):
                key = "fg" if a == 38 else "bg"
                if i < len(queue) and queue[i] == 5 and i + 1 < len(queue):
                    rep[key] = f"idx{min(queue[i + 1], 255)}"
                    i += 2
                elif i < len(queue) and queue[i] == 2 and i + 3 < len(queue):
                    r, g, b = (min(v, 255) for v in queue[i + 1 : i + 4])
                    rep[key] = f"#{r:02x}{g:02x}{b:02x}"
                    i += 4
                else:
                    i = len(queue)
        self.cursor.attrs = self.cursor.attrs._replace(**rep)

    def set_rgb(self, key: str, value: str) -> None:
        """Used by FastStream for colon-form SGR (`38:2::r:g:b`)."""
        if key == "fg":
            self.cursor.attrs = self.cursor.attrs._replace(fg=value)
        else:
            self.cursor.attrs = self.cursor.attrs._replace(bg=value)

    # -- fast draw -------------------------------------------------------------------------
    def draw(self, data: str) -> None:
        if (
            self.charset
            or self.g0_charset is not cs.LAT1_MAP  # LAT1_MAP is the identity
            or mo.IRM in self.mode
            or mo.DECAWM not in self.mode
        ):
            super().draw(data)
            return
        cur = self.cursor
        attrs = cur.attrs
        glyphs = self._glyphs.get(attrs)
        if glyphs is None:
            if len(self._glyphs) > 256:
                self._glyphs.clear()
            glyphs = self._glyphs[attrs] = {c: attrs._replace(data=c) for c in _PRINTABLE}
        if not (data.isascii() and data.isprintable()):
            # Single-width characters take the fast path too once seen; anything else (wide,
            # combining, controls) goes through pyte's per-character draw.
            for c in set(data).difference(glyphs):
                if not c.isprintable() or wcwidth(c) != 1:
                    super().draw(data)
                    return
                glyphs[c] = attrs._replace(data=c)
        glyph = glyphs.__getitem__
        cols = self.columns
        n = len(data)
        pos = 0
        while pos < n:
            if cur.x >= cols:
                self.dirty.add(cur.y)
                self.carriage_return()
                self.linefeed()
            x = cur.x
            take = min(cols - x, n - pos)
            cells = map(glyph, data[pos : pos + take])
            self.buffer[cur.y].update(zip(range(x, x + take), cells, strict=False))
            cur.x = x + take
            pos += take
        self.dirty.add(cur.y)


_SGR_FLAGS: dict[int, tuple[str, bool]] = {
    1: ("bold", True),
    3: ("italics", True),
    4: ("underscore", True),
    5: ("blink", True),
    7: ("reverse", True),
    9: ("strikethrough", True),
    22: ("bold", False),
    23: ("italics", False),
    24: ("underscore", False),
    25: ("blink", False),
    27: ("reverse", False),
    29: ("strikethrough", False),
}

# -- lazy feeding ---------------------------------------------------------------------------

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
