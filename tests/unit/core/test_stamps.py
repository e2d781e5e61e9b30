"""The datetime-free stamps read exactly as datetime writes them, roundings included."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from looop.home import clock, localtime, stamps
from tests.clocks import FixedClock


def _dt_ms(ts: float) -> str:
    d = datetime.fromtimestamp(ts, tz=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _dt_s(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


EDGES = [0.0, 1.0, 1.9999995, 1.9999994, 1.0000005, 1782000000.9999996, 1782000000.5, 86399.9999999]


@given(st.one_of(st.sampled_from(EDGES), st.floats(min_value=0, max_value=4e9)))
def test_stamps_match_datetime(ts: float) -> None:
    assert stamps.utc_stamp_ms(ts) == _dt_ms(ts)
    assert stamps.utc_stamp(ts) == _dt_s(ts)


PARSE_EDGES = [
    "2026-06-21T01:15:42Z",
    "2026-06-21T01:15:42.123Z",
    "2026-06-21T01:15:42.000001Z",
    "2026-06-21T01:15:42.12Z",
    "2024-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2000-02-29T23:59:59.999999Z",
    "2026-13-01T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-06-21T24:00:00Z",
    "2026-06-21T01:60:00Z",
    "2026-06-21T01:15:60Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2026-06-21T01:15:42.1234567Z",
    "2026-06-21T01:15:42.Z",
    "2026-06-21 01:15:42Z",
    "2026-06-21T01:15:42+00:00",
    "2026-06-21T01:15:42+09:00",
    "2026-06-21T01:15:42",
    "\u0662\u0660\u0662\u0666-06-21T01:15:42Z",
    "2026-06-21T01:15:4\u00b2Z",
    "+026-06-21T01:15:42Z",
    "",
    "Z",
]


@given(st.sampled_from(PARSE_EDGES) | st.text(alphabet="0123456789-T:.Z+ ", max_size=30))
def test_parse_utc_reads_as_datetime_does(stamp: str) -> None:
    assert stamps.parse_utc(stamp) == localtime.parse_iso_utc(stamp)


@given(st.floats(min_value=-6e10, max_value=2.5e11))
def test_parse_utc_reads_back_every_stamp_looop_writes(ts: float) -> None:
    d = datetime.fromtimestamp(ts, tz=UTC)
    for text in (
        d.strftime("%Y-%m-%dT%H:%M:%SZ"),
        d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        _dt_ms(ts),
    ):
        got = stamps.parse_utc(text)
        assert got == localtime.parse_iso_utc(text)
        assert got is not None or d.year < 1000  # glibc writes such years short


@given(st.one_of(st.sampled_from(EDGES), st.floats(min_value=0, max_value=4e9)))
def test_the_system_clocks_struct_time_is_its_datetime(ts: float) -> None:
    c = clock.SystemClock()
    assert c.local_tm(ts)[:6] == c.local(ts).timetuple()[:6]
    fixed = FixedClock()
    assert fixed.local_tm(ts)[:6] == fixed.local(ts).timetuple()[:6]


def test_the_system_clocks_zone_is_tz_then_the_systems() -> None:
    """TZ names the zone (a path under zoneinfo too); a TZ no zone has is the system's zone,
    never an error (named_zone, the clock's one door to zoneinfo, says why a name is not one)."""
    assert localtime.zone_name(clock.SystemClock("Asia/Tokyo").zone()) == "Asia/Tokyo"
    assert localtime.zone_name(clock.SystemClock(":/usr/share/zoneinfo/Asia/Tokyo").zone()) == (
        "Asia/Tokyo"
    )
    system = clock.SystemClock(None).zone()
    assert clock.SystemClock("Nowhere/Bogus").zone() == system
    assert system.utcoffset(datetime.now(UTC)) is not None
