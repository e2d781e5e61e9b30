"""TermGate: what of a worker's output may reach the human's terminal on attach, whole or cut
anywhere."""

from __future__ import annotations

import itertools
import re
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from looop.sessions import termgate
from looop.sessions.attach import utf8_locale
from looop.sessions.termgate import STRING_MAX, TermGate
from tests.helpers import examples


def gate(data: bytes, **kw: bool) -> bytes:
    g = TermGate(**kw)
    return g.feed(data) + g.flush()


def gate_chunks(chunks: list[bytes], **kw: bool) -> bytes:
    g = TermGate(**kw)
    return b"".join(g.feed(c) for c in chunks) + g.flush()


# What must never reach the terminal, each between two words that must.
HOSTILE = {
    "osc52 write bel": b"\x1b]52;c;UFdORUQ=\x07",
    "osc52 write st": b"\x1b]52;c;UFdORUQ=\x1b\\",
    "osc52 query": b"\x1b]52;c;?\x07",
    "title set": b"\x1b]0;PWNED\x07",
    "icon set": b"\x1b]1;PWNED\x1b\\",
    "window title": b"\x1b]2;PWNED\x07",
    "title report": b"\x1b[21t",
    "icon report": b"\x1b[20t",
    "window resize": b"\x1b[8;1;1t",
    "title stack": b"\x1b[22;0t",
    "decrqss": b"\x1bP$qm\x1b\\",
    "xtgettcap": b"\x1bP+q544e\x1b\\",
    "tmux passthrough": b"\x1bPtmux;\x1b\x1b]52;c;UFdORUQ=\x07\x1b\\",
    "sixel": b"\x1bPq#0;2;0;0;0#0~~\x1b\\",
    "colour query": b"\x1b]4;1;?\x07",
    "fg query": b"\x1b]10;?\x07",
    "bg query": b"\x1b]11;?\x1b\\",
    "palette set": b"\x1b]4;1;rgb:ff/00/00\x07",
    "palette reset": b"\x1b]104\x07",
    "cwd": b"\x1b]7;file://host/PWNED\x07",
    "iterm file": b"\x1b]1337;File=name=UFdORUQ=;inline=0:UFdORUQ=\x07",
    "notify 777": b"\x1b]777;notify;PWNED;body\x07",
    "notify 9": b"\x1b]9;PWNED\x07",
    "apc": b"\x1b_Gf=100;PWNED\x1b\\",
    "pm": b"\x1b^PWNED\x1b\\",
    "sos": b"\x1bXPWNED\x1b\\",
    "enq": b"\x05",
    "decid": b"\x1bZ",
    "leave utf8": b"\x1b%@",
    "s8c1t": b"\x1b G",
    "screen checksum": b"\x1b[1;1;1;1;1;1*y",
    "keyboard lock": b"\x1b[2h",
    "local echo": b"\x1b[12l",
    "vt52 mode": b"\x1b[?2l",
    "vt52 among others": b"\x1b[?25;2l",
    "vt52 leading zero": b"\x1b[?02l",
    "vt52 with an intermediate": b"\x1b[?2$l",
    "vt52 many zeros": b"\x1b[?0002l",
    "vt52 subparameter": b"\x1b[?2:0l",
    "keyboard lock leading zero": b"\x1b[02h",
    "media copy": b"\x1b[5i",
    "presentation state report": b"\x1b[1$w",  # DECCIR echoes the charset designators set
    "terminal state report": b"\x1b[1$u",
    "user preferred supplemental set": b"\x1b[&u",
    "link to a script": b"\x1b]8;;javascript:alert(1)\x07",
    "link with control": b"\x1b]8;;https://a\x0b.b\x07",
    "osc cancelled": b"\x1b]0;PWNED\x18",
    "osc cancelled sub": b"\x1b]52;c;UFdORUQ=\x1a",
    "bel inside dcs is body": b"\x1bP$q\x07PWNED\x1b\\",
}


@pytest.mark.parametrize("seq", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_sequence_is_dropped_whole(seq: bytes) -> None:
    assert gate(b"before" + seq + b"after") == b"beforeafter"


@pytest.mark.parametrize("seq", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_sequence_cut_anywhere_is_dropped_whole(seq: bytes) -> None:
    data = b"before" + seq + b"after"
    for cut in range(1, len(data)):
        assert gate_chunks([data[:cut], data[cut:]]) == b"beforeafter", cut
    assert gate_chunks([bytes([b]) for b in data]) == b"beforeafter"


ORDINARY = {
    "sgr": b"\x1b[1;31mred\x1b[0m",
    "truecolour colon": b"\x1b[38:2::10:20:30mx\x1b[m",
    "cursor moves": b"\x1b[H\x1b[10;20H\x1b[3A\x1b[2B\x1b[5C\x1b[D\x1b[7G\x1b[4d",
    "erase": b"\x1b[2J\x1b[K\x1b[1K\x1b[3J",
    "scroll region": b"\x1b[2;20r\x1b[3S\x1b[T",
    "alternate screen": b"\x1b[?1049h\x1b[?1049l\x1b[?47h\x1b[?1047l",
    "cursor visibility": b"\x1b[?25l\x1b[?25h",
    "bracketed paste": b"\x1b[?2004h\x1b[?2004l",
    "mouse": b"\x1b[?1000h\x1b[?1002h\x1b[?1003h\x1b[?1006h\x1b[?1015h\x1b[?1000l",
    "focus events": b"\x1b[?1004h",
    "synchronized output": b"\x1b[?2026h\x1b[?2026l",
    "insert mode": b"\x1b[4h\x1b[4l",
    "kitty keyboard": b"\x1b[>1u\x1b[<u\x1b[=1;1u",
    "cursor shape": b"\x1b[2 q",
    "save restore": b"\x1b7\x1b8\x1b[s\x1b[u",
    "keypad": b"\x1b=\x1b>",
    "charset": b"\x1b(0qqq\x1b(B",
    "index": b"\x1bD\x1bM\x1bE",
    "device attributes": b"\x1b[c\x1b[>c",
    "cursor position query": b"\x1b[6n",
    "mode query": b"\x1b[?2026$p",
    "keyboard flags query": b"\x1b[?u",
    "version query": b"\x1b[>q",
    "hyperlink st": b"\x1b]8;;https://example.com/a?b=c\x1b\\link\x1b]8;;\x1b\\",
    "hyperlink with id": b"\x1b]8;id=1;file:///tmp/x\x1b\\x\x1b]8;;\x1b\\",
    "utf8": "café — ✓ 日本 🙂".encode(),
    "controls": b"a\tb\r\nc\x08d\x07",
}


@pytest.mark.parametrize("seq", ORDINARY.values(), ids=ORDINARY.keys())
def test_drawing_passes_byte_for_byte_whole_and_cut(seq: bytes) -> None:
    assert gate(seq) == seq
    for cut in range(1, len(seq)):
        assert gate_chunks([seq[:cut], seq[cut:]]) == seq, cut


def test_a_hyperlink_ended_by_bel_passes_ended_by_st() -> None:
    assert gate(b"\x1b]8;;https://e.com\x07x\x1b]8;;\x07") == (
        b"\x1b]8;;https://e.com\x1b\\x\x1b]8;;\x1b\\"
    )


def test_links_off_drops_hyperlinks_and_keeps_their_text() -> None:
    assert gate(b"\x1b]8;;https://e.com\x1b\\x\x1b]8;;\x1b\\", links=False) == b"x"


def test_c1_controls_in_utf8_are_dropped_alone() -> None:
    # U+009B (CSI), U+009D (OSC), U+0090 (DCS), U+009C (ST): what followed is plain text.
    assert gate(b"a\xc2\x9b21tb") == b"a21tb"
    assert gate(b"\xc2\x9d52;c;QQ==\xc2\x9c") == b"52;c;QQ=="
    assert gate(b"\xc2\x90$qm\xc2\x9c") == b"$qm"


def test_invalid_utf8_shows_as_the_replacement_character_never_as_a_control() -> None:
    # A stray 0x9b, an overlong ESC (C0 9B) and an overlong CSI (E0 82 9B).
    for bad in (b"\x9b21t", b"\xc0\x9b[21t", b"\xe0\x82\x9b21t"):
        out = gate(bad).decode("utf-8")  # always valid UTF-8
        assert not re.search("[\x00-\x1f\x7f-\x9f]", out), out
        assert "\ufffd" in out


def test_an_8bit_terminal_loses_every_c1_byte() -> None:
    # In Latin-1, 0x9b is CSI and 0x9d OSC; the rest of the text passes.
    assert gate(b"caf\xe9 \x9b21t \x9d52;c;QQ==\x9c", utf8=False) == b"caf\xe9 21t 52;c;QQ=="


def test_a_utf8_character_cut_by_a_chunk_passes_whole() -> None:
    data = "—✓🙂".encode()
    for cut in range(1, len(data)):
        assert gate_chunks([data[:cut], data[cut:]]) == data


def test_a_character_cut_at_the_very_end_shows_as_the_replacement_character() -> None:
    assert gate(b"ok\xe2\x80") == "ok\ufffd".encode()


def test_an_unterminated_string_hides_a_bounded_stretch_then_output_shows() -> None:
    tail = b"\r\nSHOWN\r\n"
    data = b"\x1b]52;c;" + b"A" * (STRING_MAX + 100) + tail
    out = gate(data)
    assert out.endswith(tail)
    assert b"\x1b" not in out
    # Exactly the bound is hidden (the introducer, then STRING_MAX bytes of body).
    assert len(out) == len(data) - 2 - STRING_MAX
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    assert gate_chunks(chunks) == out


def test_an_unfinished_sequence_at_the_end_is_dropped() -> None:
    for tail in (
        b"\x1b",
        b"\x1b[",
        b"\x1b[12;3",
        b"\x1b]0;ti",
        b"\x1bP$q",
        b"\x1b(",
        b"\x1b]8;;x\x1b",
        b"\x1b]0;x\xc2",  # half a C1 ST inside a string
    ):
        assert gate(b"ok" + tail) == b"ok", tail


def test_a_sequence_broken_by_a_control_loses_its_introducer() -> None:
    # ESC [ 2 LF 1 t: the terminal would run LF inside the CSI; here the CSI never starts.
    assert gate(b"\x1b[2\n1t") == b"\n1t"
    assert gate(b"\x1b\x1b]0;x\x07y") == b"y"  # ESC ESC: the second starts the sequence
    assert gate(b"\x1b[" + b"1" * 1000 + b"t").count(b"\x1b") == 0


def test_an_osc_ended_by_another_escape_starts_that_one() -> None:
    # xterm ends an OSC at any ESC; the ESC begins the next sequence, which is judged itself.
    assert gate(b"\x1b]0;PWNED\x1b[31mred") == b"\x1b[31mred"


# ---- properties over arbitrary streams, cut anywhere -----------------------------------------

_PIECES = st.sampled_from(
    [*HOSTILE.values(), *ORDINARY.values(), b"\x1b", b"\x1b[", b"\x1b]", b"\x07", b"\x9b",
     b"\xc2", b"\x9d", b"\x18", b"\x1b\\", b"text", b"\xe2\x80", b"\x94", b";", b"52", b"?",
     b"0", b"2", b"h", b"l", b":"]
)  # fmt: skip
_STREAM = st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=30).map(b"".join)

# What a terminal may receive: text with no ESC, ENQ or C1 control, and the sequences the gate
# passes. An independent description of the gate's output, checked by matching it whole.
_ALLOWED = re.compile(
    rb"(?:[^\x1b\x05]"
    rb"|\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    rb"|\x1b[78=>DEHMNOcno|}~]"
    rb"|\x1b[()*+\-./][\x30-\x7e]"
    rb"|\x1b#[34568]"
    rb"|\x1b\]8;[\x20-\x7e]*\x1b\\)*",
)
_BAD_CSI = re.compile(rb"\x1b\[[\x30-\x3f]*[ti]|\x1b\[[\x30-\x3f]*\*y")
_MODES = re.compile(rb"\x1b\[(\??)([\x30-\x3f]*)[hl]")


def _bad_mode(out: bytes) -> bool:
    """A mode set that would lock the keyboard, echo it, or leave ANSI for VT52, however spelt."""
    for private, params in _MODES.findall(out):
        numbers = [int(f.split(b":")[0] or b"0") for f in params.split(b";")]
        if (private and 2 in numbers) or (not private and set(numbers) - {4}):
            return True
    return False


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=examples(400), deadline=None)
@given(_STREAM, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_stream_cut_anywhere_gives_the_same_safe_output(data: bytes, cuts: list[int]) -> None:
    whole = gate(data)
    assert gate_chunks(_chunked(data, cuts)) == whole
    m = _ALLOWED.fullmatch(whole)
    assert m is not None, whole
    assert not _BAD_CSI.search(whole), whole
    assert not _bad_mode(whole), whole
    text = whole.decode("utf-8")  # valid UTF-8 always
    assert not re.search("[\x80-\x9f]", text), whole
    assert gate(whole) == whole  # what passed once passes again unchanged


@settings(max_examples=examples(200), deadline=None)
@given(_STREAM)
def test_any_stream_to_an_8bit_terminal_has_no_c1_byte(data: bytes) -> None:
    out = gate(data, utf8=False)
    assert not re.search(rb"[\x80-\x9f]", out), out
    assert _ALLOWED.fullmatch(out) is not None, out


def test_the_longest_sequence_cut_anywhere_is_judged_as_it_is_whole() -> None:
    # As long as a CSI may be (256 parameter bytes, 16 intermediates): held whole across a cut.
    for seq in (b"\x1b[" + b"1" * 256 + b" " * 16 + b"q", b"\x1b" + b" " * 4 + b"X"):
        data = b"a" + seq + b"b"
        for cut in range(1, len(data)):
            assert gate_chunks([data[:cut], data[cut:]]) == gate(data), cut


def test_a_c1_string_terminator_ends_a_dropped_string() -> None:
    # ST as U+009C (or byte 0x9c on an 8-bit terminal) ends the string there, as the terminal
    # would: what follows is not swallowed.
    data = b"\x1b]0;PWNED\xc2\x9cshown"
    assert gate(data) == b"shown"
    for cut in range(1, len(data)):
        assert gate_chunks([data[:cut], data[cut:]]) == b"shown", cut
    assert gate(b"\x1bP$qm\x9cshown", utf8=False) == b"shown"


def test_locking_shifts_are_dropped() -> None:
    # LS2/LS3 and their right-hand kin would leave the human's shell in another charset.
    for seq in (b"\x1bn", b"\x1bo", b"\x1b|", b"\x1b}", b"\x1b~"):
        assert gate(b"a" + seq + b"b") == b"ab"


@pytest.mark.parametrize(
    ("env", "utf8"),
    [
        ({}, True),
        ({"LANG": "C"}, True),
        ({"LANG": "en_US.UTF-8"}, True),
        ({"LC_CTYPE": "en_US.utf8@euro"}, True),
        ({"LANG": "de_DE.ISO-8859-1"}, False),
        ({"LANG": "ru_RU.KOI8-R"}, False),
        ({"LC_ALL": "de_DE.ISO-8859-15", "LANG": "en_US.UTF-8"}, False),
        ({"LC_ALL": "", "LC_CTYPE": "en_US.UTF-8", "LANG": "de_DE.latin1"}, True),
    ],
)
def test_the_locale_names_the_terminals_codeset(env: dict[str, str], utf8: bool) -> None:
    assert utf8_locale(env) is utf8


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=8)), max_size=30).map(b"".join))
def test_the_c_speed_runs_judge_as_the_sequence_by_sequence_path_does(data: bytes) -> None:
    # The fast regexes only skip ahead over what the careful path would pass (or drop) itself.
    plain_text_only = re.compile(rb"(?:[^\x1b]++)*+")
    with (
        mock.patch.object(termgate, "_RUN", plain_text_only),
        mock.patch.object(termgate, "_RUN_NO_LINKS", plain_text_only),
        mock.patch.object(termgate, "_DROPPED", re.compile(rb"")),
    ):
        careful = gate(data)
        careful_8bit = gate(data, utf8=False)
        careful_no_links = gate(data, links=False)
    assert gate(data) == careful
    assert gate(data, utf8=False) == careful_8bit
    assert gate(data, links=False) == careful_no_links
