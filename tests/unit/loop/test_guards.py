from __future__ import annotations

import pytest

from looop.core.errors import CorruptState
from looop.core.paths import Paths
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
