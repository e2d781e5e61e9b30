"""Inlined text defused so it cannot pass for one of the prompt's own headers: a line that
reads as === or --- to a reader (or a terminal) gets a backslash before its marks."""

from __future__ import annotations

import re
import unicodedata

# A line whose first visible characters are === or --- could pass for one of our section or
# item headers; inlined text gets a backslash there. Every character str.splitlines breaks at
# (\v, \f, NEL, U+2028, …) starts a line. What a reader does not see is looked through before
# and between the marks: controls (ESC and its terminal sequences, C1), format characters
# (zero-width, BOM, bidi), combining marks, blanks, blank letters (Hangul fillers, braille
# blank). What could look like a mark counts as one, by its Unicode properties rather than a
# list: NFKC folds the compatibility forms (fullwidth ＝, ⩶ as ===); any other non-ASCII
# dash (Pd), modifier symbol or letter (Sk, Lm: ˭ ˗ ˉ ー), visible space (Zs: the Ogham
# space mark) or character named as a line (HORIZONTAL, HYPHEN, EQUALS, BOX DRAWINGS, …) may
# be either mark; _CONFUSABLE the few no property names (一, ㅡ, 〓). The printed text keeps
# its own characters.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# Cn/Co/Cs: unassigned, private-use and surrogate code points show as nothing or a box.
_UNSEEN = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_MARKISH = frozenset({"Pd", "Sk", "Lm", "Zs"})
_MARK_WORDS = (
    "HYPHEN", "DASH", "MINUS", "EQUAL", "IDENTICAL", "EQUIVALENT", "HORIZONTAL", "MACRON",
    "OVERLINE", "LOW LINE", "TRIGRAM", "DIGRAM", "BOX DRAWINGS",
)  # fmt: skip
_EITHER = "*"  # a look-alike that may pass for either mark
_CONFUSABLE = dict.fromkeys("\ua4ff\u3013", "=") | dict.fromkeys("\u4e00\u3161\u1173", "-")
BREAKS = re.compile(f"[{LINE_BREAKS}]+")


def _unseen(c: str) -> bool:
    if c == " " or c in _BLANK_LETTERS:
        return True
    cat = unicodedata.category(c)
    # a space that is a plain space to NFKC shows as one; the Ogham space mark shows a line
    return cat in _UNSEEN or (cat == "Zs" and unicodedata.normalize("NFKC", c) == " ")


def _fold(c: str, normalise: bool = True) -> str:
    """A visible character as a mark reads: "=" / "-" for the marks and what folds to them,
    _EITHER for a look-alike of either, else the character itself."""
    if c.isascii():
        return c
    if c in _CONFUSABLE:
        return _CONFUSABLE[c]
    folded = [k for k in unicodedata.normalize("NFKC", c) if not _unseen(k)]
    if normalise and folded and folded != [c]:
        return "".join(_fold(k, normalise=False) for k in folded)
    if unicodedata.category(c) in _MARKISH:
        return _EITHER
    name = unicodedata.name(c, "")
    return _EITHER if any(w in name for w in _MARK_WORDS) else c


def _marks(head: str) -> bool:
    """Three visible characters that could read as === or as ---."""
    return set(head) <= {"=", "-", _EITHER} and len(set(head) - {_EITHER}) <= 1


def _sequence_end(line: str, i: int) -> int:
    """The index after a terminal escape sequence starting at line[i] (ESC or C1 CSI), so the
    whole sequence counts as unseen: `ESC [ 2 K`, `ESC ] … BEL`, `ESC ( B`, `ESC M`."""
    j = i + 1
    if line[i] == "\x1b":
        if j >= len(line):
            return j
        if line[j] == "]":  # OSC: up to BEL or ST
            end = min(
                (k for k in (line.find("\x07", j), line.find("\x1b\\", j)) if k >= 0), default=-1
            )
            return len(line) if end < 0 else end + (1 if line[end] == "\x07" else 2)
        if line[j] != "[":
            while j < len(line) and "\x20" <= line[j] <= "\x2f":  # intermediates
                j += 1
            return min(j + 1, len(line))
        j += 1
    while j < len(line) and "\x20" <= line[j] <= "\x3f":  # CSI parameters and intermediates
        j += 1
    return min(j + 1, len(line))


def _marks_at(line: str, sequences: bool) -> int:
    """Where the line's first visible character is when the first three read as === or ---,
    else -1. `sequences`: read terminal escape sequences as one unseen unit each (a terminal's
    reading); without, each control alone is unseen and the rest of a sequence is seen."""
    first, head = -1, ""
    i = 0
    while i < len(line) and len(head) < 3:
        c = line[i]
        if sequences and c in "\x1b\x9b":
            i = _sequence_end(line, i)
            continue
        if not _unseen(c):
            if first < 0:
                first = i
            head += _fold(c)
            if not _marks(head[:3]):
                return -1
        i += 1
    return first if len(head) >= 3 else -1


def _forged_at(line: str) -> int:
    """_marks_at as a reader, else as a terminal reads the line (-1: not forged)."""
    at = _marks_at(line, sequences=False)
    if at < 0 and ("\x1b" in line or "\x9b" in line):
        at = _marks_at(line, sequences=True)
    return at


def _defuse(line: str) -> str:
    """A backslash before the first visible character of a forged line; at the line's start
    when a terminal sequence would swallow it there (`ESC \\`)."""
    at = _forged_at(line)
    if at < 0:
        return line
    fixed = line[:at] + "\\" + line[at:]
    return "\\" + line if _forged_at(fixed) >= 0 else fixed


def escape_body(text: str) -> str:
    """Defuse section forgery: `=== NOW ===` inside a goal becomes `\\=== NOW ===`."""
    return "".join(_defuse(line) for line in text.splitlines(keepends=True))
