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
# blank). The marks' look-alikes count as marks: NFKC folds the compatibility forms (fullwidth
# ＝, ⩶ as ===); _LOOKALIKE the rest. The printed text keeps its own characters.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# Cn/Co/Cs: unassigned, private-use and surrogate code points show as nothing or a box.
_UNSEEN = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zs", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_LOOKALIKE = dict.fromkeys(
    "\u2550\ua78a\u2e40\u1400\u30a0\u2261\u2263\u2e17\u2017\ua4ff\U0001f7f0\u268c\u2630\u3013", "="
) | dict.fromkeys(
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u02d7\u02c9\u00af\u203e\uffe3"
    "\u2796\u2500\u2501\u2504\u2505\u2508\u2509\u254c\u254d\u2574\u2576\u2578\u257a"
    "\u257c\u257e\u23af\u23ba\u23bb\u23bc\u23bd\u2e3a\u2e3b\ufe58\u30fc\u4e00\u3161"
    "\u1173\u1806\u1428",
    "-",
)
BREAKS = re.compile(f"[{LINE_BREAKS}]+")


def _unseen(c: str) -> bool:
    return c in _BLANK_LETTERS or unicodedata.category(c) in _UNSEEN


def _fold(c: str) -> str:
    """A visible character as a mark reads: "=" / "-" for the marks and their look-alikes."""
    if c in _LOOKALIKE:
        return _LOOKALIKE[c]
    return "".join(_LOOKALIKE.get(k, k) for k in unicodedata.normalize("NFKC", c) if not _unseen(k))


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
            if head and (head[0] not in "=-" or head.strip(head[0])):
                return -1
        i += 1
    return first if len(head) >= 3 else -1


def _forged(line: str) -> bool:
    if _marks_at(line, sequences=False) >= 0:
        return True
    return ("\x1b" in line or "\x9b" in line) and _marks_at(line, sequences=True) >= 0


def _defuse(line: str) -> str:
    """A backslash before the first visible character of a forged line; at the line's start
    when a terminal sequence would swallow it there (`ESC \\`)."""
    at = _marks_at(line, sequences=False)
    if at < 0:
        at = _marks_at(line, sequences=True) if "\x1b" in line or "\x9b" in line else -1
        if at < 0:
            return line
    fixed = line[:at] + "\\" + line[at:]
    return "\\" + line if _forged(fixed) else fixed


def escape_body(text: str) -> str:
    """Defuse section forgery: `=== NOW ===` inside a goal becomes `\\=== NOW ===`."""
    return "".join(_defuse(line) for line in text.splitlines(keepends=True))
