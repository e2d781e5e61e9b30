"""The datetime-free stamps read exactly as datetime writes them, roundings included."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from looop.core import stamps


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
