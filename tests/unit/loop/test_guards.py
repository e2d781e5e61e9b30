from __future__ import annotations

import pytest

from looop.home.errors import CorruptState
from looop.home.paths import Paths
from looop.loop import guards


def test_backoff_delay_grows_then_caps() -> None:
    assert [guards.backoff_delay(n, 300) for n in (0, 1, 2, 3, 4, 5, 100)] == [
        0,
        60,
        120,
        240,
        300,
        300,
        300,
    ]
    assert guards.backoff_delay(7, 3600) == 3600


def test_failures_count_regardless_of_hash_and_clear(paths: Paths) -> None:
    assert guards.record_failure(paths, 100.0, "h1", "p") == 1
    assert guards.record_failure(paths, 101.0, "h2", "p") == 2
    assert guards.record_failure(paths, 102.0, "h3", "p") == 3
    b = guards.read_backoff(paths, 200.0)
    assert b is not None and b.fails == 3 and b.ts == 102 and b.phash == "p"
    guards.clear_backoff(paths)
    assert guards.read_backoff(paths, 200.0) is None


def test_corrupt_backoff_fails_closed_and_is_repaired(paths: Paths) -> None:
    paths.backoff.write_text("{garbage")
    b = guards.read_backoff(paths, 500.0)
    assert b is not None and b.repaired and b.fails == guards.ASSUMED_FAILS_WHEN_CORRUPT
    again = guards.read_backoff(paths, 501.0)
    assert again is not None and not again.repaired and again.fails == b.fails


def test_last_hash_missing_valid_and_corrupt(paths: Paths) -> None:
    assert guards.read_last_hash(paths) == ""
    guards.commit_hash(paths, "0" * 32)
    assert guards.read_last_hash(paths) == "0" * 32
    paths.last_tick_hash.write_text("zzz")
    with pytest.raises(CorruptState, match="delete it"):
        guards.read_last_hash(paths)
    paths.last_tick_hash.unlink()
    paths.last_tick_hash.mkdir()  # unreadable: a directory where a file belongs
    with pytest.raises(CorruptState):
        guards.read_last_hash(paths)


def test_last_failure_round_trip_and_clip(paths: Paths) -> None:
    guards.write_last_failure(paths, 10.0, "tick-1", "tick.failed", "x" * 5000, 2)
    lf = guards.read_last_failure(paths)
    assert lf is not None and lf["code"] == "tick.failed" and len(lf["error"]) == 2000
    paths.last_failure.write_text("nope")
    lf = guards.read_last_failure(paths)
    assert lf is not None and "unreadable" in lf["error"]


DAY = 86400.0


def test_backward_step_during_backoff_is_measured_on_the_monotonic_clock(paths: Paths) -> None:
    # a failure at wall 10_000 (monotonic 500), wait 60 s; 30 s later the wall steps back a day
    guards.record_failure(paths, 10_000.0, "h", "p", mono=500.0)
    now = 10_030.0 - DAY
    b = guards.read_backoff(paths, now, 530.0)
    assert b is not None
    assert now - b.ts == pytest.approx(30.0)  # 30 s of the 60 s wait are behind us
    later = guards.read_backoff(paths, now + 31, 561.0)
    assert later is not None and (now + 31) - later.ts >= guards.backoff_delay(1, 300)


def test_future_stamp_without_a_usable_monotonic_reading_restarts_the_wait_once(
    paths: Paths,
) -> None:
    # the record's monotonic reading is ahead of ours (a reboot in between), the wall behind
    guards.record_failure(paths, 10_000.0, "h", "p", mono=9e9)
    now = 10_000.0 - DAY
    b = guards.read_backoff(paths, now, 5.0)
    assert b is not None and b.ts == now and b.fails == 1
    # restamped on disk: a minute later the wait is over, not a day later
    again = guards.read_backoff(paths, now + 61, 66.0)
    assert again is not None and (now + 61) - again.ts >= guards.backoff_delay(1, 300)


def test_a_record_without_a_monotonic_reading_still_never_waits_past_its_backoff(
    paths: Paths,
) -> None:
    paths.backoff.write_text('{"v": 1, "fails": 2, "ts": 10000, "phash": "p"}')
    now = 10_000.0 - DAY
    assert guards.read_backoff(paths, now, 1.0) is not None
    b = guards.read_backoff(paths, now + 121, 122.0)
    assert b is not None and (now + 121) - b.ts >= guards.backoff_delay(2, 300)


def test_a_nudge_is_never_held_past_its_own_wait_by_a_backward_step(paths: Paths) -> None:
    guards.set_next_wake(paths, 10_000.0, 120, 3600)
    assert guards.next_wake(paths, 10_010.0) == 10_120.0
    # the wall clock steps back a day: the nudge is due within its 120 s, not in a day
    back = 10_010.0 - DAY
    wake = guards.next_wake(paths, back)
    assert wake is not None and 0 < wake - back <= 120
    # a beat later the same nudge is that much nearer, not another 120 s away
    assert guards.next_wake(paths, back + 60) == wake
