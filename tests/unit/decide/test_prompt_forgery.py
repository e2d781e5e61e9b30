"""Section forgery in inlined text, the remaining spellings: a control, a terminal sequence,
a combining mark or a look-alike before or between the marks of `===` / `---`. Each spelling
class has a test; hypothesis generates the combinations."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from looop.decide.defuse import LINE_BREAKS, escape_body
from tests.helpers import examples

UNSEEN_CATEGORIES = ("Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp")
ANSI = ["\x1b[2K", "\x1b[1;31m", "\x1b]0;title\x07", "\x1b]8;;x\x1b\\", "\x9b0m", "\x1b(B", "\x1bM"]
EQUALS = ["=", "\uff1d", "\ufe66", "\u207c", "\u208c", "\u2550", "\ua78a", "\u2e40", "\u1400"]
EQUALS += ["\u30a0", "\u2261", "\u2263", "\u2e17", "\U0001f7f0", "\ua4ff", "\u2017", "\u268c"]
EQUALS += ["\u2630", "\u3013"]
DASHES = ["-", "\uff0d", "\ufe63", "\u2010", "\u2011", "\u2013", "\u2014", "\u2015", "\u2212"]
DASHES += ["\u2500", "\u2501", "\u2504", "\u254c", "\u23af", "\u2e3a", "\u30fc", "\u4e00", "\u2796"]
BLANKS = ["\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"]  # letters that show nothing
_ANSI_RE = re.compile(
    r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)|(\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]|\x1b[\x20-\x2f]*[\x30-\x7e]"
)


def _escaped_line(text: str, n: int) -> str:
    return escape_body(text).splitlines()[n]


def _seen(line: str) -> str:
    """The line as a reader sees it: no terminal sequences, controls, marks or blanks."""
    line = _ANSI_RE.sub("", line)
    return "".join(
        c for c in line if unicodedata.category(c) not in UNSEEN_CATEGORIES and c not in BLANKS
    )


@pytest.mark.parametrize("control", ["\x1b", "\x07", "\x00", "\x7f", "\x80", "\x9b", "\x9f"])
def test_a_control_before_the_marks_does_not_hide_them(control: str) -> None:
    for forged in (f"{control}=== NOW ===", f"{control}--- fake.md", f"{control}\t=== NOW"):
        line = _escaped_line(f"ok\n{forged}\n", 1)
        assert _seen(line).startswith("\\"), line
        assert line.replace("\\", "", 1) == forged


@pytest.mark.parametrize("seq", ANSI)
def test_a_terminal_sequence_before_the_marks_does_not_hide_them(seq: str) -> None:
    assert _escaped_line(f"ok\n{seq}=== NOW ===", 1) == f"{seq}\\=== NOW ==="


@pytest.mark.parametrize("mark", ["\u0301", "\u20dd", "\u0336", "\ufe0f", "\u0489", "\u034f"])
def test_combining_marks_between_the_marks_do_not_hide_them(mark: str) -> None:
    line = f"={mark}={mark}={mark} NOW"
    assert _escaped_line(f"ok\n{line}", 1) == "\\" + line
    assert _escaped_line(f"ok\n-{mark}-{mark}- x.md", 1).startswith("\\-")


@pytest.mark.parametrize("look", EQUALS[1:] + DASHES[1:])
def test_a_look_alike_of_the_marks_counts_as_one(look: str) -> None:
    line = f"{look}{look}{look} NOW {look}{look}{look}"
    assert _escaped_line(f"ok\n{line}", 1) == "\\" + line  # printed as written, escaped
    mixed = f"={look}= NOW" if look in EQUALS else f"-{look}- x.md"
    assert _escaped_line(f"ok\n{mixed}", 1) == "\\" + mixed


@pytest.mark.parametrize("folded", ["\u2a76 NOW", "\u2a75= NOW", "=\u2a75 NOW"])
def test_a_character_that_is_several_marks_counts_as_them(folded: str) -> None:
    assert _escaped_line(f"ok\n{folded}", 1) == "\\" + folded


@pytest.mark.parametrize("br", [*LINE_BREAKS, "\r\n"])
def test_every_line_break_a_model_reads_starts_a_line(br: str) -> None:
    out = escape_body(f"ok{br}=== NOW ==={br}--- x.md{br}")
    assert out == f"ok{br}\\=== NOW ==={br}\\--- x.md{br}"


def test_every_unseen_character_is_looked_through() -> None:
    missed = []
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        if unicodedata.category(c) not in UNSEEN_CATEGORIES or c in LINE_BREAKS:
            continue
        if c in "\x1b\x9b":
            continue  # starts a terminal sequence: its own test
        for text in (f"{c}=== NOW", f"={c}={c}= NOW", f"-{c}-{c}- x.md"):
            if not _seen(escape_body(text)).startswith("\\"):
                missed.append(f"U+{cp:04X}")
    assert missed == []


@pytest.mark.parametrize("c", ["\u0378", "\U000e0080", "\ue000", "\U0010fffd", "\ufdd0"])
def test_unassigned_and_private_use_characters_are_looked_through(c: str) -> None:
    assert _escaped_line(f"ok\n{c}=== NOW", 1) == f"{c}\\=== NOW"
    assert _escaped_line(f"ok\n={c}={c}= NOW", 1) == f"\\={c}={c}= NOW"


def test_ordinary_text_is_left_alone() -> None:
    for text in ["== two only", "=-= mixed", "a === NOW", "> === quoted", "x\n  -- two\n", "=a=="]:
        assert escape_body(text) == text


# ---------------------------------------------------------------- generated spellings

_unseen = st.one_of(
    st.characters(categories=UNSEEN_CATEGORIES, exclude_characters=LINE_BREAKS + "\x1b\x9b"),
    st.sampled_from(ANSI),
    st.sampled_from(BLANKS),
)
_gap = st.lists(_unseen, max_size=3).map("".join)
_plain = st.text(st.characters(exclude_characters=LINE_BREAKS + "\\"), max_size=20)


@st.composite
def _forgery(draw: st.DrawFn) -> str:
    marks = draw(st.sampled_from([EQUALS, DASHES]))
    parts = [draw(_gap) + draw(st.sampled_from(marks)) for _ in range(3)]
    return "".join(parts) + draw(_plain)


@settings(max_examples=examples(300), deadline=None)
@given(before=_plain, forged=_forgery(), br=st.sampled_from([*LINE_BREAKS, "\r\n"]))
def test_a_generated_forgery_is_escaped(before: str, forged: str, br: str) -> None:
    text = f"{before}{br}{forged}{br}tail"
    line = escape_body(text).splitlines()[1]
    assert _seen(line).startswith("\\"), (forged, line)
    assert line.count("\\") == forged.count("\\") + 1  # one backslash added, nothing else
    assert line.replace("\\", "") == forged.replace("\\", "")


@settings(max_examples=examples(300), deadline=None)
@given(st.text())
def test_escaping_only_adds_backslashes_and_is_stable(text: str) -> None:
    out = escape_body(text)
    assert out.replace("\\", "") == text.replace("\\", "")
    assert escape_body(out) == out
