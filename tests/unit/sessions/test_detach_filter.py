"""DetachFilter: Ctrl-\\ twice detaches in every encoding; everything else reaches the program."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from looop.sessions.detachkey import ESC_FLUSH_S, DetachFilter, parse_keys

KITTY_PRESS = b"\x1b[92;5u"
KITTY_PRESS_1 = b"\x1b[92;5:1u"
KITTY_REPEAT = b"\x1b[92;5:2u"
KITTY_RELEASE = b"\x1b[92;5:3u"
MOK_PRESS = b"\x1b[27;5;92~"


def feed_all(f: DetachFilter, chunks: list[bytes], now: float = 0.0) -> tuple[bytes, bool]:
    out = b""
    for chunk in chunks:
        got, detach = f.feed(chunk, now)
        out += got
        if detach:
            return out, True
    return out, False


def test_legacy_double_press_detaches_and_forwards_nothing_of_it() -> None:
    assert DetachFilter().feed(b"\x1c\x1c", 0.0) == (b"", True)


def test_bytes_before_the_detach_key_are_forwarded() -> None:
    assert DetachFilter().feed(b"ls\r\x1c\x1c", 0.0) == (b"ls\r", True)


def test_double_press_split_across_reads() -> None:
    f = DetachFilter()
    assert f.feed(b"ab\x1c", 0.0) == (b"ab", False)
    assert f.armed
    assert f.feed(b"\x1c", 5.0) == (b"", True)


def test_single_press_is_withheld_until_another_key_releases_it() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1c", 0.0) == (b"", False)
    assert f.feed(b"q", 0.0) == (b"\x1cq", False)
    assert not f.armed
    # Released presses do not count toward a later detach.
    assert f.feed(b"\x1c", 0.0) == (b"", False)
    assert f.feed(b"\x1c", 0.0) == (b"", True)


def test_first_press_released_by_an_arrow_keeps_order() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1c", 0.0) == (b"", False)
    assert f.feed(b"\x1b[A", 0.0) == (b"\x1c\x1b[A", False)


def test_first_press_released_by_a_lone_escape_after_the_timer() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1c\x1b", 1.0) == (b"", False)
    assert f.flush_pending(1.0 + ESC_FLUSH_S) == b"\x1c\x1b"
    assert not f.armed


def test_kitty_press_twice_detaches() -> None:
    assert feed_all(DetachFilter(), [KITTY_PRESS, KITTY_PRESS]) == (b"", True)
    assert feed_all(DetachFilter(), [KITTY_PRESS_1 + KITTY_PRESS_1]) == (b"", True)


def test_kitty_repeat_and_release_between_presses_are_ignored() -> None:
    chunks = [KITTY_PRESS, KITTY_REPEAT, KITTY_RELEASE, KITTY_PRESS_1]
    assert feed_all(DetachFilter(), chunks) == (b"", True)


def test_kitty_modifier_key_events_between_presses_are_ignored() -> None:
    ctrl_release, ctrl_press = b"\x1b[57442;1:3u", b"\x1b[57442;5u"
    chunks = [KITTY_PRESS, KITTY_RELEASE, ctrl_release, ctrl_press, KITTY_PRESS]
    assert feed_all(DetachFilter(), chunks) == (b"", True)


def test_kitty_repeat_is_not_a_second_press() -> None:
    # Holding the key down must not detach; the withheld events reach the program in order.
    f = DetachFilter()
    assert feed_all(f, [KITTY_PRESS, KITTY_REPEAT, KITTY_REPEAT]) == (b"", False)
    assert f.feed(b"x", 0.0) == (KITTY_PRESS + KITTY_REPEAT + KITTY_REPEAT + b"x", False)


def test_kitty_lock_modifiers_and_alternate_keys_count_as_ctrl() -> None:
    for press in (
        b"\x1b[92;69u",  # ctrl + caps lock
        b"\x1b[92;133u",  # ctrl + num lock
        b"\x1b[92;197:1u",  # ctrl + both locks
        b"\x1b[92:124;5u",  # with a shifted alternate key
        b"\x1b[92::92;5u",  # with a base-layout key
    ):
        assert feed_all(DetachFilter(), [press, press]) == (b"", True), press


def test_other_kitty_modifiers_are_not_the_detach_key() -> None:
    for seq in (b"\x1b[92;6u", b"\x1b[92;7u", b"\x1b[92;1u", b"\x1b[92u", b"\x1b[93;5u"):
        f = DetachFilter()
        assert f.feed(seq + seq, 0.0) == (seq + seq, False), seq
        assert not f.armed


def test_unarmed_release_events_pass_through() -> None:
    assert DetachFilter().feed(KITTY_RELEASE + b"\x1b[97;1:3u", 0.0) == (
        KITTY_RELEASE + b"\x1b[97;1:3u",
        False,
    )


def test_modify_other_keys_double_press() -> None:
    assert feed_all(DetachFilter(), [MOK_PRESS, MOK_PRESS]) == (b"", True)
    assert feed_all(DetachFilter(), [MOK_PRESS, b"\x1c"]) == (b"", True)
    other = b"\x1b[27;5;93~"
    assert DetachFilter().feed(other + other, 0.0) == (other + other, False)


def test_mixed_encodings_count_as_the_same_key() -> None:
    assert feed_all(DetachFilter(), [b"\x1c", KITTY_PRESS]) == (b"", True)


def test_kitty_press_split_byte_by_byte() -> None:
    data = KITTY_PRESS + KITTY_RELEASE + KITTY_PRESS
    chunks = [data[i : i + 1] for i in range(len(data))]
    out, detach = feed_all(DetachFilter(), chunks)
    assert (out, detach) == (b"", True)


def test_kitty_press_released_by_other_key_forwards_every_byte_in_order() -> None:
    f = DetachFilter()
    assert feed_all(f, [KITTY_PRESS, KITTY_RELEASE]) == (b"", False)
    assert f.feed(b"\x1b[97u", 0.0) == (KITTY_PRESS + KITTY_RELEASE + b"\x1b[97u", False)


def test_bytes_after_detach_in_the_same_read_are_dropped() -> None:
    assert DetachFilter().feed(b"a\x1c\x1cbc", 0.0) == (b"a", True)


def test_arrows_and_function_keys_pass_through_untouched() -> None:
    keys = b"\x1b[A\x1b[B\x1b[1;5C\x1bOP\x1b[15~\x1b[200~paste\x1b[201~\x1b[<0;3;4M"
    assert DetachFilter().feed(keys, 0.0) == (keys, False)


def test_split_arrow_is_reassembled_not_flushed_early() -> None:
    f = DetachFilter()
    assert f.feed(b"x\x1b[", 1.0) == (b"x", False)
    assert f.feed(b"1;5", 1.004) == (b"", False)
    assert f.deadline == 1.0 + ESC_FLUSH_S  # the wait runs from the first byte
    assert f.feed(b"A", 1.008) == (b"\x1b[1;5A", False)
    assert f.deadline is None


def test_lone_escape_flushes_after_ten_ms() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1b", 2.0) == (b"", False)
    assert f.deadline == 2.0 + ESC_FLUSH_S
    assert f.flush_pending(2.0 + ESC_FLUSH_S / 2) == b""
    assert f.flush_pending(2.0 + ESC_FLUSH_S) == b"\x1b"
    assert f.deadline is None
    assert f.flush_pending(9.0) == b""


def test_escape_then_letter_is_alt_key_forwarded_at_once() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1bb", 0.0) == (b"\x1bb", False)
    assert f.deadline is None


def test_overlong_sequence_is_not_buffered_forever() -> None:
    seq = b"\x1b[" + b"1;" * 50 + b"m"
    assert DetachFilter().feed(seq, 0.0) == (seq, False)


def test_malformed_csi_passes_through_and_the_key_after_still_counts() -> None:
    f = DetachFilter()
    assert f.feed(b"\x1b[1\x1c", 0.0) == (b"\x1b[1", False)
    assert f.feed(b"\x1c", 0.0) == (b"", True)


@given(
    st.binary(max_size=200).map(lambda b: b.replace(b"\x1c", b"")),
    st.lists(st.integers(min_value=1, max_value=7), max_size=40),
)
def test_input_without_the_detach_key_is_forwarded_exactly(data: bytes, cuts: list[int]) -> None:
    f = DetachFilter()
    out, pos, now = b"", 0, 0.0
    for cut in [*cuts, len(data)]:
        got, detach = f.feed(data[pos : pos + cut], now)
        assert not detach
        out += got
        pos += cut
        now += 0.001
    out += f.flush_pending(now + ESC_FLUSH_S)
    assert out == data


def test_dockers_spelling_names_the_keys() -> None:
    f = DetachFilter(parse_keys("ctrl-x,d"))
    assert f.feed(b"\x1c\x1cls\x18", 0.0) == (b"\x1c\x1cls", False)  # Ctrl-X withheld
    assert f.feed(b"e", 0.0) == (b"\x18e", False)  # broken: both go on
    assert f.feed(b"\x18\x18d", 0.0) == (b"\x18", True)  # a first key again begins anew
    kitty_ctrl_x, kitty_d = b"\x1b[120;5u", b"\x1b[100u"
    assert feed_all(DetachFilter(parse_keys("ctrl-x,d")), [kitty_ctrl_x, kitty_d]) == (b"", True)
    assert DetachFilter(parse_keys("ctrl-p,ctrl-q")).feed(b"\x10\x11", 0.0) == (b"", True)


@pytest.mark.parametrize("spec", ["ctrl-", "ctrl-[", "ctrl-xx", "x,,d", "shift-a", "ab"])
def test_a_key_docker_would_not_take_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="is not a key"):
        parse_keys(spec)
