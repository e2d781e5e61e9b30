"""`FastStream`: pyte's ByteStream parsing whole CSI sequences with one regex match.

The stock parser is a generator fed one character at a time; this one takes printable runs
and CSI sequences in bulk, swallows DCS/APC/PM/SOS strings, and carries an unfinished trailing
sequence over to the next chunk so a read boundary never splits one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyte
from pyte import modes as mo
from pyte.screens import Char

if TYPE_CHECKING:
    from looop.sessions.vtscreen import SessionScreen

# CSI with an optional private marker, parameters (colons allowed), intermediates, final.
_CSI_RE = re.compile(r"\x1b\[([<=>?]?)([0-9;:]*)([ -/]*)([@-~])")
# Private CSI finals pyte's handlers accept a `private` keyword for.
_PRIVATE_OK = frozenset("hlJKc")
_MAX_CARRY = 64 * 1024


class FastStream(pyte.ByteStream):
    """A ByteStream that parses common sequences in bulk and never mis-splits them."""

    def __init__(self, screen: SessionScreen) -> None:
        self.screen = screen
        self._carry = ""
        self._ground = True
        self._sgr_cache: dict[tuple[Char, str, bool], Char] = {}
        super().__init__(screen)

    def attach(self, screen: pyte.Screen) -> None:
        super().attach(screen)
        self._csi_handlers: dict[str, Callable[..., None]] = {
            final: getattr(screen, name) for final, name in self.csi.items()
        }
        self._basic: dict[str, Callable[[], None]] = {
            ch: getattr(screen, name) for ch, name in self.basic.items()
        }
        self._ground = True
        self._carry = ""

    def reset_parser(self) -> None:
        self._initialize_parser()
        self.utf8_decoder.reset()
        self._carry = ""
        self._ground = True

    def feed(self, data: bytes) -> None:  # type: ignore[override]  # as pyte's ByteStream
        text = self.utf8_decoder.decode(data) if self.use_utf8 else data.decode("latin-1")
        self.feed_text(text)

    def _fsm(self, ch: str) -> None:
        self._ground = bool(self._send_to_parser(ch))

    def feed_text(self, data: str) -> None:
        if self._carry:
            data = self._carry + data
            self._carry = ""
        draw = self.screen.draw
        text_match = self._text_pattern.match
        csi_match = _CSI_RE.match
        basic = self._basic
        n = len(data)
        i = 0
        while i < n:
            if not self._ground:  # the stock parser is mid-sequence: let it finish
                self._fsm(data[i])
                i += 1
                continue
            m = text_match(data, i)
            if m is not None:
                draw(m.group())
                i = m.end()
                continue
            ch = data[i]
            if ch == "\x1b":
                m = csi_match(data, i)
                if m is not None:
                    self._csi(m)
                    i = m.end()
                    continue
                end = _sequence_end(data, i)
                if end < 0:
                    if n - i < _MAX_CARRY:
                        self._carry = data[i:]
                        return
                    end = n
                if data[i + 1 : i + 2] in ("P", "X", "^", "_"):
                    i = end  # device-control strings carry no screen content
                    continue
                for c in data[i:end]:
                    self._fsm(c)
                i = end
                continue
            handler = basic.get(ch)
            if handler is not None:
                if not (ch in "\x0e\x0f" and self.use_utf8):
                    handler()
            elif ch not in "\x00\x7f":
                self._fsm(ch)  # C1 CSI/OSC introducers: rare, let the stock parser have them
            i += 1

    def _csi(self, m: re.Match[str]) -> None:
        marker, params, inter, final = m.groups()
        if inter or marker in ("<", "=", ">"):
            return  # xterm extensions pyte does not model (modifyOtherKeys, cursor style, …)
        private = marker == "?"
        if ":" in params:
            if final == "m" and not private:
                self._sgr_colon(params)
            return
        if final == "m" and not private:
            screen = self.screen
            key = (screen.cursor.attrs, params, mo.DECSCNM in screen.mode)
            attrs = self._sgr_cache.get(key)
            if attrs is None:
                screen.select_graphic_rendition(
                    *[min(int(p), 9999) if p else 0 for p in params.split(";")]
                )
                if len(self._sgr_cache) > 4096:
                    self._sgr_cache.clear()
                attrs = self._sgr_cache[key] = screen.cursor.attrs
            screen.cursor.attrs = attrs
            return
        handler = self._csi_handlers.get(final)
        if handler is None:
            return
        args = [min(int(p), 9999) if p else 0 for p in params.split(";")]
        if private:
            if final in _PRIVATE_OK:
                handler(*args, private=True)
        else:
            handler(*args)

    def _sgr_colon(self, params: str) -> None:
        screen = self.screen
        plain: list[int] = []
        for part in params.split(";"):
            if ":" not in part:
                plain.append(int(part) if part else 0)
                continue
            sub = [int(p) if p else 0 for p in part.split(":")]
            head = sub[0]
            if head in (38, 48) and len(sub) >= 3:
                key = "fg" if head == 38 else "bg"
                if sub[1] == 5:
                    screen.set_rgb(key, f"idx{min(sub[2], 255)}")
                elif sub[1] == 2 and len(sub) >= 5:
                    r, g, b = (min(v, 255) for v in sub[-3:])
                    screen.set_rgb(key, f"#{r:02x}{g:02x}{b:02x}")
            elif head == 4:  # underline styles: 4:0 off, anything else on
                plain.append(24 if len(sub) > 1 and sub[1] == 0 else 4)
        if plain:
            screen.select_graphic_rendition(*plain)


def _sequence_end(data: str, i: int) -> int:
    """Index just past the escape sequence at data[i] (an ESC), or -1 when it is unfinished."""
    n = len(data)
    if i + 1 >= n:
        return -1
    c = data[i + 1]
    if c == "[":
        j = i + 2
        while j < n and (" " <= data[j] <= "?" or data[j] in "\x07\x08\x09\x0a\x0b\x0c\x0d"):
            j += 1
        if j >= n:
            return -1
        if data[j] == "$":
            return j + 2 if j + 1 < n else -1
        return j + 1
    if c in "]PX^_":
        j = i + 2
        while j < n:
            ch = data[j]
            if (ch == "\x07" and c == "]") or ch == "\x9c":
                return j + 1
            if ch == "\x1b":
                if j + 1 >= n:
                    return -1
                if data[j + 1] == "\\":
                    return j + 2
                if c != "]":
                    return j  # an ESC aborts a device-control string
            j += 1
        return -1
    if c in "#%()*+":
        return i + 3 if i + 2 < n else -1
    return i + 2
