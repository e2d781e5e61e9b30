"""Boundary-safe reads: never split a UTF-8 character or an escape sequence across reads."""

from __future__ import annotations

import random

import pytest

from looop.home.textsafe import decode, safe_end, safe_text, strip_ansi


@pytest.mark.parametrize(
    "data",
    [
        b"ok \xe2\x82",  # 2 of 3 bytes of €
        b"ok \xe2",  # lead byte only
        b"ok \xf0\x9f\x98",  # 3 of 4 bytes of an emoji
        b"ok \xc3",  # 1 of 2 bytes of é
        b"ok \x1b",  # a lone ESC
        b"ok \x1b[",  # CSI introducer
        b"ok \x1b[38;5;2",  # CSI without its final byte
        b"ok \x1b]0;title",  # OSC without BEL/ST
        b"ok \x1b]0;title\x1b",  # OSC whose ST is half there
        b"ok \x1bO",  # SS3 without its key
        b"ok \x1b(",  # charset designation without the charset
        b"ok \x1bP+q544e",  # DCS without ST
    ],
)
def test_an_unfinished_tail_is_held_back(data: bytes) -> None:
    assert safe_end(data) == 3
    text, used = safe_text(data)
    assert (text, used) == ("ok ", 3)


@pytest.mark.parametrize(
    "data",
    [
        b"euro \xe2\x82\xac",
        b"emoji \xf0\x9f\x98\x80",
        b"red \x1b[31m",
        b"title \x1b]0;t\x07",
        b"title \x1b]0;t\x1b\\",
        b"key \x1bOA",
        b"charset \x1b(B",
        b"save \x1b7",
        b"dcs \x1bP+q544e\x1b\\",
    ],
)
def test_complete_sequences_are_not_held(data: bytes) -> None:
    assert safe_end(data) == len(data)


@pytest.mark.parametrize("data", [b"bad \xff", b"bad \x80\x80", b"bad \xc0", b"bad \xf8\x88"])
def test_invalid_bytes_are_decoded_lossily_not_held(data: bytes) -> None:
    text, used = safe_text(data, raw=True)
    assert used == len(data)
    assert "\ufffd" in text


def test_a_runaway_unterminated_osc_is_not_held_forever() -> None:
    data = b"x\x1b]0;" + b"a" * 10_000
    assert safe_end(data) == len(data)


def test_strip_ansi_keeps_text_and_folds_crlf() -> None:
    raw = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07plain\x1bOA\x1bP+q\x1b\\\r\nnext\x07\tend\x1b(B"
    assert strip_ansi(raw) == "red plain\nnext\tend"


def test_decode_replaces_invalid_bytes() -> None:
    assert decode(b"a\xffb") == "a\ufffdb"


def _stream() -> bytes:
    rng = random.Random(7)
    pieces = [
        b"plain words ",
        "€uro ".encode(),
        "日本語 ".encode(),
        "😀".encode(),
        b"\x1b[1;32m",
        b"\x1b[0m",
        b"\x1b]0;a title\x07",
        b"\x1b]2;other\x1b\\",
        b"\x1bOA",
        b"\r\n",
        b"\x1b(B",
        b"\xff",
    ]
    return b"".join(rng.choice(pieces) for _ in range(3000))


@pytest.mark.parametrize("raw", [True, False])
def test_incremental_reads_at_any_split_equal_one_read(raw: bool) -> None:
    """A reader polling a growing file at random sizes sees exactly the one-shot text."""
    data = _stream()
    rng = random.Random(11)
    visible = 0  # bytes "on disk" so far
    offset = 0  # the reader's offset
    out: list[str] = []
    while visible < len(data):
        visible = min(len(data), visible + rng.randint(1, 40))
        text, used = safe_text(data[offset:visible], raw=raw)
        out.append(text)
        offset += used
        assert offset <= visible
    tail = decode(data[offset:])  # the writer is done: the rest decodes lossily
    out.append(tail if raw else strip_ansi(tail))
    whole = decode(data)
    got = "".join(out)
    if raw:
        assert got == whole
    else:
        assert got.replace("\r\n", "\n") == strip_ansi(whole)
