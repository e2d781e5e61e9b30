"""Boundary-safe text views of a raw PTY transcript.

Incremental readers (`log --since`, `follow`, `expect`) must never cut a UTF-8 character or an
escape sequence in half: the next read would start inside it and mangle both halves. So they
decode only the *safe prefix* of what is on disk and hand back an offset that stops before the
held-back tail. Bytes that can never complete (invalid UTF-8) are not held: they decode lossily.
"""

from __future__ import annotations

import re

ESC = 0x1B
# An unterminated OSC/DCS longer than this is garbage, not a sequence still arriving.
MAX_STRING_SEQ = 4096
MAX_CSI = 256

_CSI_PARAM = range(0x20, 0x40)  # parameter bytes 0x30-0x3f and intermediates 0x20-0x2f
_STRING_INTRO = frozenset(b"]P_^X")  # OSC, DCS, APC, PM, SOS: run until ST (OSC also BEL)


def _utf8_holdback(data: bytes, end: int) -> int:
    """Where an incomplete trailing UTF-8 character starts (or `end` when there is none)."""
    for back in range(1, min(4, end) + 1):
        b = data[end - back]
        if b < 0x80:
            return end
        if b >= 0xC0:  # a lead byte
            if 0xC2 <= b <= 0xDF:
                need = 2
            elif 0xE0 <= b <= 0xEF:
                need = 3
            elif 0xF0 <= b <= 0xF4:
                need = 4
            else:
                return end  # never valid: decodes lossily, holding it would stall forever
            return end - back if back < need else end
        # a continuation byte: keep looking for its lead
    return end


def _escape_complete(data: bytes, start: int, end: int) -> bool:
    """Whether the escape sequence at data[start] (an ESC) is complete before `end`."""
    if start + 1 >= end:
        return False  # a lone trailing ESC
    intro = data[start + 1]
    if intro == 0x5B:  # CSI: parameters/intermediates then one final byte
        j = start + 2
        while j < end and data[j] in _CSI_PARAM:
            j += 1
        if j >= end:
            return end - start > MAX_CSI
        return True  # a final byte (or a byte that aborts the sequence)
    if intro in _STRING_INTRO:
        body = data[start + 2 : end]
        if intro == 0x5D and 0x07 in body:
            return True
        if b"\x1b\\" in body or 0x9C in body:
            return True
        # A further ESC aborts the string; the caller only looks at the last ESC anyway.
        return end - start > MAX_STRING_SEQ
    if intro == 0x4F:  # SS3 needs exactly one more byte
        return start + 2 < end
    if 0x20 <= intro <= 0x2F:  # ESC + intermediates + final, e.g. ESC ( B
        j = start + 1
        while j < end and 0x20 <= data[j] <= 0x2F:
            j += 1
        return j < end
    return True


def safe_end(data: bytes) -> int:
    """Length of the prefix of `data` that can be decoded without splitting anything."""
    end = _utf8_holdback(data, len(data))
    low = max(0, end - MAX_STRING_SEQ - 2)
    esc = data.rfind(b"\x1b", low, end)
    if esc >= 0 and not _escape_complete(data, esc, end):
        end = esc
        # A trailing lone ESC may be the first half of the ST closing an open OSC/DCS.
        prev = data.rfind(b"\x1b", low, esc)
        if (
            prev >= 0
            and prev + 1 < esc
            and data[prev + 1] in _STRING_INTRO
            and not _escape_complete(data, prev, esc)
        ):
            end = prev
    if end and data[end - 1] == 0x0D:
        end -= 1  # a CR may be half of a CRLF: wait for the next byte before folding it
    return end


def decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


_CSI = r"\x1b\[[0-?]*[ -/]*"  # CSI up to (not including) its final byte
_OSC = r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, terminated by BEL or ST
_ANSI_RE = re.compile(
    rf"""
    {_CSI}[@-~]?                         # CSI (an unterminated one at the very end too)
  | {_OSC}
  | \x1b[PX^_][^\x1b]*(?:\x1b\\)?        # DCS / SOS / PM / APC strings
  | \x1bO.?                              # SS3: one more character
  | \x1b[ -/]*[0-~]?                     # other escapes, a lone ESC
  | [\x00-\x08\x0b\x0c\x0e-\x1f\x7f]     # C0 controls except TAB, LF, CR
    """,
    re.VERBOSE | re.DOTALL,
)
_CR_AT_LINE_START = re.compile(r"\n\r+")
_SCREEN_CSI = re.compile(_CSI + "([@-~])")
_SCREEN_OSC = re.compile(_OSC)


def strip_ansi(text: str) -> str:
    """Printable text: escape sequences and stray controls removed; CRLF and a lone CR
    (a redraw from column 0) both become LF, so `^` in a regex finds what a human sees
    at the start of a line. A CR just after a line ended moves nowhere (a shell prints one
    after each command it runs): it adds no empty line."""
    text = _ANSI_RE.sub("", text).replace("\r\n", "\n")
    return _CR_AT_LINE_START.sub("\n", text).replace("\r", "\n")


def _screen_csi(m: re.Match[str]) -> str:
    final = m.group(1)
    if final == "C":  # cursor forward: a TUI's way to draw a gap
        return " "
    return "\n" if final in "ABEFHf" else ""  # cursor moves start another line


def screen_text(raw: bytes) -> str:
    """A terminal log's bytes as plain lines: escape sequences out, cursor moves as breaks
    (strip_ansi drops the moves, which would glue a TUI's words and lines together)."""
    text = _SCREEN_OSC.sub("", raw.decode("utf-8", "replace"))
    return _SCREEN_CSI.sub(_screen_csi, text).replace("\r", "\n")


def safe_text(data: bytes, raw: bool = False) -> tuple[str, int]:
    """(text of the safe prefix, bytes consumed): the core of every incremental read."""
    end = safe_end(data)
    text = decode(data[:end])
    return (text if raw else strip_ansi(text)), end
