"""Named keys: every name maps to the bytes a terminal sends; unknown names fail before use."""

from __future__ import annotations

import pytest

from looop.sessions.keys import KEY_NAMES, encode_keys, key_bytes
from looop.sessions.state import SessionError

# The table from the reference (sessions §1.14) plus the extra control combos and back-tab.
EXPECTED: dict[str, bytes] = {
    "Enter": b"\r",
    "Return": b"\r",
    "CR": b"\r",
    "Tab": b"\t",
    "S-Tab": b"\x1b[Z",
    "BTab": b"\x1b[Z",
    "Shift-Tab": b"\x1b[Z",
    "Esc": b"\x1b",
    "Escape": b"\x1b",
    "Space": b" ",
    "Backspace": b"\x7f",
    "BS": b"\x7f",
    "Up": b"\x1b[A",
    "Down": b"\x1b[B",
    "Right": b"\x1b[C",
    "Left": b"\x1b[D",
    "Home": b"\x1b[H",
    "End": b"\x1b[F",
    "Insert": b"\x1b[2~",
    "Ins": b"\x1b[2~",
    "Delete": b"\x1b[3~",
    "Del": b"\x1b[3~",
    "PageUp": b"\x1b[5~",
    "PgUp": b"\x1b[5~",
    "PageDown": b"\x1b[6~",
    "PgDn": b"\x1b[6~",
    "F1": b"\x1bOP",
    "F2": b"\x1bOQ",
    "F3": b"\x1bOR",
    "F4": b"\x1bOS",
    "F5": b"\x1b[15~",
    "F6": b"\x1b[17~",
    "F7": b"\x1b[18~",
    "F8": b"\x1b[19~",
    "F9": b"\x1b[20~",
    "F10": b"\x1b[21~",
    "F11": b"\x1b[23~",
    "F12": b"\x1b[24~",
}


def test_key_names_is_exactly_the_table() -> None:
    assert set(KEY_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_round_trips_in_any_case(name: str) -> None:
    want = EXPECTED[name]
    assert encode_keys([name]) == want
    assert encode_keys([name.lower()]) == want
    assert encode_keys([name.upper()]) == want
    assert encode_keys([name.swapcase()]) == want


@pytest.mark.parametrize("letter", "abcdefghijklmnopqrstuvwxyz")
def test_control_letters_in_every_spelling(letter: str) -> None:
    want = bytes([ord(letter) - ord("a") + 1])
    for name in (f"C-{letter}", f"c-{letter.upper()}", f"Ctrl-{letter}", f"CTRL+{letter}"):
        assert key_bytes(name) == want, name
    assert key_bytes(f"^{letter}") == want
    assert key_bytes(f"^{letter.upper()}") == want


def test_well_known_control_bytes() -> None:
    assert encode_keys(["C-c"]) == b"\x03"
    assert encode_keys(["C-d"]) == b"\x04"
    assert encode_keys(["C-l"]) == b"\x0c"
    assert encode_keys(["C-r"]) == b"\x12"
    assert encode_keys(["C-z"]) == b"\x1a"


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("C-@", b"\x00"),
        ("C-Space", b"\x00"),
        ("C-[", b"\x1b"),
        ("C-\\", b"\x1c"),
        ("Ctrl-\\", b"\x1c"),
        ("^\\", b"\x1c"),
        ("C-]", b"\x1d"),
        ("C-^", b"\x1e"),
        ("^^", b"\x1e"),
        ("C-_", b"\x1f"),
    ],
)
def test_control_punctuation(name: str, want: bytes) -> None:
    assert key_bytes(name) == want


def test_several_keys_are_concatenated_in_order() -> None:
    assert encode_keys(["C-c", "up", "ENTER", "F12", "Space"]) == (b"\x03\x1b[A\r\x1b[24~ ")
    assert encode_keys(["Esc", "Esc"]) == b"\x1b\x1b"


@pytest.mark.parametrize("bad", ["Foo", "", "C-", "C-1", "C-ab", "^", "F13", "Ctrl-é", "Enter2"])
def test_unknown_name_raises_one_line_with_examples(bad: str) -> None:
    with pytest.raises(SessionError) as info:
        key_bytes(bad)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"`{bad}`" in msg
    assert "Enter" in msg and "C-c" in msg


def test_unknown_name_anywhere_fails_the_whole_call() -> None:
    sent: list[bytes] = []

    def send(names: list[str]) -> None:
        sent.append(encode_keys(names))

    with pytest.raises(SessionError, match="`Nope`"):
        send(["Enter", "C-c", "Nope"])
    assert sent == []


def test_no_names_is_an_error() -> None:
    with pytest.raises(SessionError):
        encode_keys([])
