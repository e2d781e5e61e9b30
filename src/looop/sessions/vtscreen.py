"""`SessionScreen`: pyte's Screen with an alternate screen, index colours and a fast ASCII
draw path; the grid every screenshot (shot.py) and stream (vtstream.py) works on."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, StaticDefaultDict
from wcwidth import wcwidth

ALT_MODES = (47, 1047, 1049)
# Private modes the screen must not act on: DECCOLM (?3) would resize pyte's grid to 132
# columns while the PTY stays as it is (xterm ignores it by default too).
IGNORED_PRIVATE = (3,)


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

    def _private(
        self, modes: tuple[int, ...], kwargs: dict[str, Any], alt: Callable[[int], None]
    ) -> tuple[int, ...]:
        """The modes left for pyte once the alternate screen's (`alt` acts on them) and the
        ignored private ones are taken out."""
        if not kwargs.get("private"):
            return modes
        for m in modes:
            if m in ALT_MODES:
                alt(m)
        return tuple(m for m in modes if m not in ALT_MODES and m not in IGNORED_PRIVATE)

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = self._private(modes, kwargs, self.enter_alternate)
        if modes:
            super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = self._private(modes, kwargs, self.leave_alternate)
        if modes:
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
