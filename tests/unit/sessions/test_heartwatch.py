"""The watchdog's heartbeat judgement on its own clock: file times and wall clock play no part."""

from __future__ import annotations

import os
from pathlib import Path

from looop.sessions.oscalls import HeartWatch


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _beat(path: Path, promise: float, n: int, mtime: float | None = None) -> None:
    path.write_text(f"{promise:.3f} 4242 {n}\n")
    if mtime is not None:  # what a clock step does to the file's time
        os.utime(path, (mtime, mtime))


def test_a_heartbeat_whose_text_changes_is_alive_whatever_its_file_time(tmp_path: Path) -> None:
    hb, clock = tmp_path / "heartbeat", Ticks()
    watch = HeartWatch(str(hb), 2.0, clock)
    watch.begin()
    day_ago = 1_000_000.0  # the file's time says it was written long ago (a clock step)
    for n in range(1, 20):
        _beat(hb, 1.0, n, mtime=day_ago if n % 2 else day_ago + 86400 * 3)
        clock.t += 1.0
        assert watch.late() is None, n


def test_a_heartbeat_that_stops_changing_is_late_past_its_promise_and_grace(
    tmp_path: Path,
) -> None:
    hb, clock = tmp_path / "heartbeat", Ticks()
    watch = HeartWatch(str(hb), 2.0, clock)
    watch.begin()
    _beat(hb, 5.0, 1)
    assert watch.late() is None
    clock.t += 6.9  # within the promise (5) + grace (2)
    assert watch.late() is None
    os.utime(hb)  # touched, not rewritten: no new sign
    clock.t += 0.2
    late = watch.late()
    assert late is not None and 7.0 < late < 7.2


def test_a_new_run_is_judged_from_its_start_not_by_the_sign_of_the_run_before(
    tmp_path: Path,
) -> None:
    hb, clock = tmp_path / "heartbeat", Ticks()
    watch = HeartWatch(str(hb), 2.0, clock)
    _beat(hb, 3600.0, 7)  # the run before promised an hour, then died
    watch.begin()
    clock.t += 2.5
    assert watch.late() is not None  # its old promise does not cover the new run
    watch.begin()
    _beat(hb, 60.0, 1)
    clock.t += 50
    assert watch.late() is None


def test_a_wiped_heartbeat_that_comes_back_counts_and_nonsense_promises_nothing(
    tmp_path: Path,
) -> None:
    hb, clock = tmp_path / "heartbeat", Ticks()
    watch = HeartWatch(str(hb), 2.0, clock)
    watch.begin()
    clock.t += 1.5
    assert watch.late() is None
    _beat(hb, 10.0, 1)
    assert watch.late() is None
    hb.unlink()  # the runtime dir was emptied: no sign, but no harm yet
    clock.t += 11
    assert watch.late() is None
    hb.write_text("nan 4242 2\n")  # its promise unreadable: the grace alone
    clock.t += 1
    assert watch.late() is None
    clock.t += 2.5
    assert watch.late() is not None


def test_the_watchdog_sleeps_until_the_run_could_first_be_late(tmp_path: Path) -> None:
    """A sleeping pulse promised 60 s: the watchdog looks after a grace, not twice a second,
    and a look at the next due time finds the silent run late."""
    hb, clock = tmp_path / "heartbeat", Ticks()
    watch = HeartWatch(str(hb), 120.0, clock)
    watch.begin()
    _beat(hb, 60.0, 1)
    assert watch.late() is None
    first = watch.next_look(0.5)
    assert first == 120.0  # never past one grace
    clock.t += first
    assert watch.late() is None  # no new sign yet, but within its promise and grace
    second = watch.next_look(0.5)
    assert second == 60.0  # the rest of the promise
    clock.t += second + 0.001
    assert watch.late() is not None
    assert watch.next_look(0.5) == 0.5  # past due: the floor, never a busy loop
