"""Durations and sizes as the session verbs take them."""

from __future__ import annotations

import pytest

from looop.sessions.durations import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("45", 45.0),
        ("2.5", 2.5),
        (".25", 0.25),
        ("1.5s", 1.5),
        ("1.5m", 90.0),
        (" 30S ", 30.0),
        ("250MS", 0.25),
        ("3 s", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    got = parse_duration(text)
    assert got is not None
    assert got == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["0", "0s", "0ms", "0m", "0.0", "none", "None", "off", "OFF", "never", "", "  "]
)
def test_no_timeout_sentinels(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "text", ["abc", "10x", "s", "ms", "1.2.3", "5 minutes", "1e3", "inf", "nan", "--5", "1s2"]
)
def test_garbage_durations_raise_one_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"`{text}`" in msg
    assert "30s" in msg


@pytest.mark.parametrize("text", ["-1", "-5s", "-0.5ms"])
def test_negative_durations_raise(text: str) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(text)


def test_huge_duration_is_refused_not_infinite() -> None:
    with pytest.raises(ValueError):
        parse_duration("9" * 400 + "d")


@pytest.mark.parametrize(
    ("text", "size"),
    [("120x40", (120, 40)), ("80X24", (80, 24)), ("1x1", (1, 1)), ("9999x9999", (9999, 9999))],
)
def test_sizes(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "120", "120x", "x40", "0x24", "80x0", "10000x10", "80*24", "-80x24", "80x24x1"]
)
def test_bad_sizes_raise_one_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert "\n" not in str(info.value)
    assert "COLSxROWS" in str(info.value)
