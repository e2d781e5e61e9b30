"""What of a worker's output reaches the human's terminal on `looop attach`.

A terminal acts on what it is sent: an attached worker could write the human's clipboard
(OSC 52), retitle the window and then ask for the title back (the reply is typed into the
input), ask for settings echoed back (DECRQSS, XTGETTCAP), or switch the terminal's decoding so
later bytes mean something else. Like tmux, which sits between a pane and the outer terminal,
the gate lets through text and the sequences that only draw, and drops the rest.

The rule is an allowlist, rebuilt at every step: what leaves the gate is text with no escape
introducer in it (no ESC, no C1 control, no ENQ) and whole, well-formed sequences the gate
chose to pass. So the terminal is back in its ground state after each piece, whatever the
worker wrote, and cannot be led into a sequence the gate did not see. A dropped sequence's
introducer never reaches the terminal, so where the gate resumes after it is safe either way.

Queries whose reply is the terminal's own fixed words (device attributes `CSI c`, status and
cursor position `CSI n`, a mode `CSI ? Ps $ p`, the version `CSI > q`, keyboard flags
`CSI ? u`) pass: programs wait for them, and the reply goes back to the worker that asked.
Queries whose reply echoes what the worker chose or what the human owns (title, clipboard,
colours, DECRQSS, XTGETTCAP, a screen checksum) are dropped.

The output is a live stream cut anywhere: an unfinished sequence at a chunk's end is held
(bounded) until the next chunk; a string sequence that never ends is dropped for at most
`STRING_MAX` bytes, then what follows is shown again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Bytes of an unterminated OSC/DCS/APC/PM/SOS string dropped before output is shown again.
STRING_MAX = 1 << 16
_OSC_KEEP_MAX = 4096  # a hyperlink longer than this is dropped

# Text and the commonest sequences a TUI draws with, in one C-speed match: colours, cursor
# moves, erases, scrolling, private modes but DECANM (?2), the fixed-reply queries, save/restore.
# Whatever stops it is looked at in Python. Everything matched here is what _escape passes.
_MODE = rb"(?:[13-9][0-9]{0,4}|2[0-9]{1,4})"  # no leading zero: `?02l` is DECANM too
_DRAWING = (
    rb"[^\x1b]++"
    rb"|\x1b\[[0-9;:]{0,32}[mABCDEFGHJKLMPSTXZ@`adefgrcn]"
    rb"|\x1b\[\?" + _MODE + rb"(?:;" + _MODE + rb"){0,8}[hl]"
    rb"|\x1b[78=>]"
)
# A hyperlink ended by ST, as _link_ok reads one (one ended by BEL is rewritten, in Python).
_LINK = rb"|\x1b\]8;[\x20-\x3a\x3c-\x7e]{0,256};(?:(?i:https?://|file://|mailto:)[\x20-\x7e]{0,3000})?\x1b\\"
_RUN = re.compile(rb"(?:" + _DRAWING + _LINK + rb")*+")
_RUN_NO_LINKS = re.compile(rb"(?:" + _DRAWING + rb")*+")
# ESC + one final: save/restore cursor, keypad modes, index, next line, tab set, reverse index,
# single shifts, full reset. Not ESC Z (DECID: a reply), not the string introducers, not the
# locking shifts (they would leave the human's shell in another charset).
_ESC_FINALS = frozenset(b"78=>DEHMNOc")
# The commonest of what is dropped, a run of it in one C-speed match, so a worker flooding the
# terminal with them costs the gate little: an ESC before a control, an ESC + final that does
# not pass (DECID…), window operations, whole OSCs but links, whole DCS/APC/PM/SOS strings. Each
# is what _escape and _in_string drop.
_ESC_DROPPED_FINALS = bytes(
    b for b in range(0x30, 0x7F) if b not in _ESC_FINALS and b not in b"[]PX^_"
)
_DROPPED = re.compile(
    rb"(?:\x1b(?=[\x00-\x1f\x7f-\xff])"
    rb"|\x1b[" + re.escape(_ESC_DROPPED_FINALS) + rb"]"
    rb"|\x1b(?![()*+\-./][\x30-\x7e]|#[34568])[\x20-\x2f]{1,4}[\x30-\x7e]"
    rb"|\x1b\[[0-9;]{0,32}[ti]"
    rb"|\x1b\](?!8;)[^\x07\x18\x1a\x1b\xc2\x9c]{0,4096}(?:\x07|\x1b\\)"
    rb"|\x1b[P_^X][^\x18\x1a\x1b\xc2\x9c]{0,4096}\x1b\\"
    rb")*+"
)
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_CSI = re.compile(rb"\x1b\[([\x30-\x3f]{0,256})([\x20-\x2f]{0,16})([\x40-\x7e])?")
_ESC = re.compile(rb"\x1b([\x20-\x2f]{0,4})([\x30-\x7e])?")
# A string ends at ST (ESC \\, or the C1 ST: U+009C, or byte 0x9c on an 8-bit terminal), BEL (an
# OSC), CAN or SUB; any other ESC ends it too and starts a sequence of its own.
_STRING_END = re.compile(rb"[\x07\x18\x1a\x1b]|\xc2\x9c")
_STRING_END_8BIT = re.compile(rb"[\x07\x18\x1a\x1b\x9c]")
_CHARSET_SLOTS = frozenset(b"()*+-./")  # ESC ( 0 and kin: which glyphs a charset shows
_LINE_SIZES = frozenset(b"34568")  # ESC # 3..8: double-height/width lines, DECALN
_KEPT_LINK_SCHEMES = (b"http://", b"https://", b"file://", b"mailto:")
_C1_CODEPOINTS = {cp: None for cp in range(0x80, 0xA0)}
_C1_BYTES = bytes(range(0x80, 0xA0))
_BEL, _ESC_BYTE = 0x07, 0x1B


def _numbers(params: bytes) -> list[int] | None:
    """A mode list's numbers as the terminal reads them (`02` is 2); None unless every field
    is plain digits."""
    fields = params.split(b";")
    if not all(f.isdigit() for f in fields):
        return None
    return [int(f) for f in fields]


def _csi_ok(params: bytes, inter: bytes, final: int) -> bool:
    """Whether a complete CSI sequence may reach the human's terminal."""
    if not inter:
        if final == ord("t"):
            return False  # XTWINOPS: title/icon reports (21t, 20t), resize, move, iconify
        if final == ord("i"):
            return False  # media copy: the printer
        if final in b"hl":
            if params.startswith(b"?"):
                # DECANM (?2, spelt any way) drops the terminal into VT52 mode, where bytes
                # parse differently.
                modes = _numbers(params[1:])
                return modes is not None and 2 not in modes
            # ANSI modes: only insert mode; KAM (2) locks the keyboard, SRM (12) echoes it.
            return _numbers(params) == [4]
    elif final in b"hl":
        return False  # a mode set with intermediates is no mode a program needs
    elif final == ord("y") and inter == b"*":
        return False  # DECRQCRA: a checksum of what is on screen, read back
    elif (inter == b"$" and final in b"wu") or (inter == b"&" and final == ord("u")):
        return False  # DECRQPSR, DECRQTSR, DECRQUPSS: state reports that echo what was set
    return True


def _link_ok(body: bytes) -> bool:
    """OSC 8 (a hyperlink, `8;params;URI`): printable ASCII and a well-known scheme, or the
    empty URI that ends a link."""
    if not body.startswith(b"8;") or len(body) > _OSC_KEEP_MAX:
        return False
    if not all(0x20 <= b < 0x7F for b in body):
        return False
    parts = body.split(b";", 2)
    if len(parts) != 3:
        return False
    uri = parts[2]
    return uri == b"" or uri.lower().startswith(_KEPT_LINK_SCHEMES)


def _utf8_cut(data: bytes) -> int:
    """Where an unfinished UTF-8 character at the end of data starts (len(data) if none)."""
    n = len(data)
    for k in range(1, min(4, n) + 1):
        b = data[n - k]
        if b < 0x80:
            return n
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n - k if need > k else n
    return n


@dataclass
class _String:
    """Inside an OSC/DCS/APC/PM/SOS string: what has been seen, and the body if it may pass."""

    osc: bool
    seen: int = 0
    body: bytearray | None = None


class TermGate:
    """Feed a worker's output chunks in order; each call returns what may reach the terminal.

    utf8: the human's terminal decodes UTF-8 (then the C1 controls U+0080..U+009F are dropped
    and invalid bytes become U+FFFD); False for an 8-bit terminal, where every byte
    0x80..0x9F is a control and is dropped. links: pass OSC 8 hyperlinks (tmux 3.4 does).
    """

    def __init__(self, *, utf8: bool = True, links: bool = True) -> None:
        self._utf8 = utf8
        self._links = links
        self._run = _RUN if links else _RUN_NO_LINKS
        self._string_end = _STRING_END if utf8 else _STRING_END_8BIT
        self._held = b""
        self._string: _String | None = None

    def feed(self, data: bytes) -> bytes:
        buf = self._held + data if self._held else data
        self._held = b""
        out: list[bytes] = []
        pos, n = 0, len(buf)
        while pos < n:
            if self._string is not None:
                pos = self._in_string(buf, pos, out)
                continue
            if pos == 0 and b"\x1b" not in buf:
                stop = n  # no sequence at all: a memchr, not the regex
            else:
                stop = self._run.match(buf, pos).end()  # type: ignore[union-attr]  # `*+` matches
            if stop > pos:
                self._text(buf, pos, stop, out)
            pos = stop
            if pos >= n or self._held:
                break
            dropped = _DROPPED.match(buf, pos).end()  # type: ignore[union-attr]  # `*+` matches
            if dropped > pos:
                pos = dropped
                continue
            pos = self._escape(buf, pos, out)
        return b"".join(out)

    def flush(self) -> bytes:
        """The end of the stream: an unfinished sequence is dropped, an unfinished character
        shown as the terminal would (U+FFFD)."""
        held, self._held = self._held, b""
        in_string, self._string = self._string is not None, None
        if held and not in_string and not held.startswith(b"\x1b") and self._utf8:
            return held.decode("utf-8", "replace").encode("utf-8")
        return b""

    def _text(self, buf: bytes, start: int, stop: int, out: list[bytes]) -> None:
        piece = buf[start:stop]
        if b"\x05" in piece:
            piece = piece.replace(b"\x05", b"")  # ENQ: the terminal would type its answerback
        if piece.isascii():
            out.append(piece)
            return
        if not self._utf8:
            out.append(piece.translate(None, _C1_BYTES))
            return
        if stop == len(buf):  # a character cut by the chunk's end waits for its other bytes
            cut = _utf8_cut(piece)
            piece, self._held = piece[:cut], piece[cut:]
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if _C1_UTF8.search(piece) is None:
                out.append(piece)  # valid, no C1: nearly all text, checked at C speed
                return
        text = piece.decode("utf-8", "replace").translate(_C1_CODEPOINTS)
        out.append(text.encode("utf-8"))

    def _hold(self, buf: bytes, pos: int) -> int:
        # Bounded by _CSI's and _ESC's own bounds: a longer one is judged malformed at once.
        self._held = buf[pos:]
        return len(buf)

    def _escape(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """At an ESC: pass or drop the sequence it starts; returns where to read on."""
        n = len(buf)
        if pos + 1 >= n:
            return self._hold(buf, pos)
        kind = buf[pos + 1]
        if kind == ord("["):
            m = _CSI.match(buf, pos)
            assert m is not None
            if m.group(3) is None:
                if m.end() == n:
                    return self._hold(buf, pos)
                return m.end()  # malformed: dropped, the byte that broke it read as text
            if _csi_ok(m.group(1), m.group(2), m.group(3)[0]):
                out.append(m.group())
            return m.end()
        if kind == ord("]"):
            self._string = _String(osc=True, body=bytearray() if self._links else None)
            return pos + 2
        if kind in b"PX^_":  # DCS, SOS, PM, APC: never passed
            self._string = _String(osc=False)
            return pos + 2
        m = _ESC.match(buf, pos)
        assert m is not None
        if m.group(2) is None:
            if m.end() == n:
                return self._hold(buf, pos)
            return m.end()  # ESC then a control or a non-ASCII byte: the ESC is dropped
        inter, final = m.group(1), m.group(2)[0]
        if (
            (not inter and final in _ESC_FINALS)
            or (len(inter) == 1 and inter[0] in _CHARSET_SLOTS)
            or (inter == b"#" and final in _LINE_SIZES)
        ):
            out.append(m.group())
        # Dropped: ESC % (leaves UTF-8, so later bytes decode as controls), ESC SP F/G, DECID.
        return m.end()

    def _in_string(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """Inside a string sequence: find its end, keeping an OSC's body if it may pass."""
        s = self._string
        assert s is not None
        n = len(buf)
        at = pos
        while True:
            m = self._string_end.search(buf, at)
            end = m.start() if m is not None else n
            if m is None or buf[end] != _BEL or s.osc:
                break
            at = end + 1  # BEL ends an OSC only; inside DCS/APC it is body
        split_st = m is None and self._utf8 and end > pos and buf[end - 1] == 0xC2
        if split_st:
            end -= 1  # a C1 ST may be half here
        room = STRING_MAX - s.seen
        if end - pos > room:  # never ended: give up on it and show what follows
            self._string = None
            return pos + room
        s.seen += end - pos
        if s.body is not None:
            if len(s.body) + end - pos > _OSC_KEEP_MAX:
                s.body = None
            else:
                s.body += buf[pos:end]
        if split_st:
            self._held = buf[end:]
            return n
        if end == n:
            return n
        b = buf[end]
        if b == _ESC_BYTE:
            if end + 1 == n:
                self._held = b"\x1b"  # ST may be half here
                return n
            self._string = None
            if buf[end + 1] == ord("\\"):
                self._finish(s, out)
                return end + 2
            return end  # an ESC ends the string (unpassed) and starts a new sequence
        self._string = None
        if b == 0xC2:  # U+009C, ST
            self._finish(s, out)
            return end + 2
        if b in (_BEL, 0x9C):  # 0x9c only matches on an 8-bit terminal
            self._finish(s, out)
        return end + 1  # or CAN/SUB: the string is cancelled

    def _finish(self, s: _String, out: list[bytes]) -> None:
        if s.body is not None and _link_ok(bytes(s.body)):
            out.append(b"\x1b]" + bytes(s.body) + b"\x1b\\")
