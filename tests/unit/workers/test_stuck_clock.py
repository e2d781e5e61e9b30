"""`stuck` is judged by time a wall-clock step does not move (home/lastoutput.py): a
supervisor marks its run's last output on the monotonic and boot clocks
(sessions/outputnotes.py's OutputMark) and the readers judge against the same clocks. A
session without a mark (started before marks, or finished) is judged by output.log's time,
as before."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from looop.home import lastoutput
from looop.sessions import outputnotes
from looop.sessions.outputnotes import MARK_EVERY_S, OutputMark
from looop.views.workerrows import health, worker_rows
from tests.clocks import FixedClock

STUCK = 900
WALL = 1_780_000_000.0


class StepClock(FixedClock):
    """Three clocks a test moves apart: the wall clock steps, suspend moves only boot."""

    def __init__(self) -> None:
        super().__init__(WALL)
        self.wall, self.mono, self.boot = WALL, 5000.0, 5600.0

    def now(self) -> float:
        return self.wall

    def local(self, ts: float | None = None) -> datetime:
        return super().local(self.wall if ts is None else ts)

    def monotonic(self) -> float:
        return self.mono

    def boottime(self) -> float:
        return self.boot

    def run(self, secs: float) -> None:
        """Real time passes, the machine awake."""
        self.wall += secs
        self.mono += secs
        self.boot += secs


def _session(data: Path, sid: str = "w1", alive: bool = True) -> dict[str, Any]:
    sdir = data / "sessions" / sid
    (sdir / "log").mkdir(parents=True)
    (sdir / "log" / "output.log").write_bytes(b"hello\n")
    (sdir / "output.log").symlink_to("log/output.log")
    return {
        "id": sid,
        "dir": str(sdir),
        "alive": alive,
        "state": "running" if alive else "exited",
        "exit_code": None,
        "note": None,
        "started_at": None,
        "label": None,
    }


def _printed(s: dict[str, Any], clock: StepClock) -> None:
    """The run printed now, as its supervisor marks it and as the kernel stamps the log."""
    lastoutput.write_mark(os.path.join(s["dir"], "log"), clock.mono, clock.boot)
    os.utime(os.path.join(s["dir"], "log", "output.log"), (clock.wall, clock.wall))


def _row(data: Path, s: dict[str, Any], clock: StepClock) -> dict[str, Any]:
    rows = worker_rows(str(data), [s], clock, STUCK)
    assert len(rows) == 1
    return rows[0]


def test_the_rule_stuck_once_quiet_for_the_bound_and_never_when_off() -> None:
    assert health("w", True, set(), STUCK, STUCK - 1) == "busy"
    assert health("w", True, set(), STUCK, STUCK) == "stuck"
    assert health("w", True, set(), STUCK, None) == "busy"  # unknown quiet counts as busy
    assert health("w", True, set(), 0, 10 * STUCK) == "busy"  # the knob at 0: never stuck
    assert health("w", True, {"w"}, STUCK, 10 * STUCK) == "waiting-ask"
    assert health("w", False, set(), STUCK, 10 * STUCK) == "dead"


@pytest.mark.parametrize("step", [600.0, 86400.0, -86400.0])
def test_a_wall_clock_step_neither_makes_nor_hides_a_stuck_worker(
    tmp_path: Path, step: float
) -> None:
    clock = StepClock()
    s = _session(tmp_path)
    _printed(s, clock)
    clock.run(60)
    clock.wall += step  # NTP, `date -s`, a restored VM: only the wall clock moves
    row = _row(tmp_path, s, clock)
    assert row["health"] == "busy", row
    assert row["last_output_unix"] == pytest.approx(clock.wall - 60)  # today's clock says when
    clock.run(STUCK)  # really quiet past the bound, whichever way the wall clock went
    row = _row(tmp_path, s, clock)
    assert row["health"] == "stuck", row
    assert row["last_output_unix"] == pytest.approx(clock.wall - 60 - STUCK)


def test_a_suspend_does_not_age_a_quiet_worker_but_its_last_output_was_before_it(
    tmp_path: Path,
) -> None:
    clock = StepClock()
    s = _session(tmp_path)
    _printed(s, clock)
    clock.run(60)
    clock.wall += 8 * 3600  # a night asleep: the wall and boot clocks go on, monotonic not
    clock.boot += 8 * 3600
    row = _row(tmp_path, s, clock)
    assert row["health"] == "busy", row  # it had a minute to print, not a night
    assert row["last_output_unix"] == pytest.approx(clock.wall - 60 - 8 * 3600)


def test_a_session_without_a_mark_is_judged_by_its_logs_time(tmp_path: Path) -> None:
    clock = StepClock()
    s = _session(tmp_path)  # a session from before marks: output.log alone
    os.utime(os.path.join(s["dir"], "log", "output.log"), (clock.wall - 60, clock.wall - 60))
    assert _row(tmp_path, s, clock)["health"] == "busy"
    clock.run(STUCK)
    row = _row(tmp_path, s, clock)
    assert row["health"] == "stuck" and row["last_output_unix"] == pytest.approx(WALL - 60)


@pytest.mark.parametrize("text", [b"", b"garbage\n", b"nan 1\n", b"-5 3\n", b"1 2 3\n"])
def test_an_unreadable_mark_reads_as_none_and_the_log_answers(tmp_path: Path, text: bytes) -> None:
    clock = StepClock()
    s = _session(tmp_path)
    (Path(s["dir"]) / "log" / "output.last").write_bytes(text)
    os.utime(os.path.join(s["dir"], "log", "output.log"), (clock.wall - 60, clock.wall - 60))
    assert lastoutput.read_mark(s["dir"]) is None
    row = _row(tmp_path, s, clock)
    assert row["health"] == "busy" and row["last_output_unix"] == pytest.approx(WALL - 60)


def test_a_mark_from_another_boot_or_a_finished_run_is_not_trusted(tmp_path: Path) -> None:
    clock = StepClock()
    s = _session(tmp_path)
    lastoutput.write_mark(os.path.join(s["dir"], "log"), clock.mono + 99999, clock.boot + 99999)
    os.utime(os.path.join(s["dir"], "log", "output.log"), (clock.wall - 60, clock.wall - 60))
    row = _row(tmp_path, s, clock)  # ahead of this boot's clocks: another boot's
    assert row["last_output_unix"] == pytest.approx(WALL - 60)
    dead = _session(tmp_path, "w2", alive=False)
    lastoutput.write_mark(os.path.join(dead["dir"], "log"), clock.mono - 5, clock.boot - 5)
    os.utime(os.path.join(dead["dir"], "log", "output.log"), (WALL - 3600, WALL - 3600))
    assert _row(tmp_path, dead, clock)["last_output_unix"] == pytest.approx(WALL - 3600)


class Timers:
    """The supervisor's loop as far as the mark uses it: its clock and call_later."""

    def __init__(self) -> None:
        self.t = 100.0
        self.due: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.t

    def call_later(self, delay: float, fn: Any) -> Any:
        self.due.append((self.t + delay, fn))
        return self

    def cancel(self) -> None:
        self.due.clear()

    def run(self, secs: float) -> None:
        self.t += secs
        while self.due and min(d[0] for d in self.due) <= self.t:
            item = min(self.due, key=lambda d: d[0])
            self.due.remove(item)
            item[1]()


def test_the_supervisor_marks_at_most_once_a_second_and_ends_on_the_last_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = Timers()
    written: list[float] = []

    def counted(fdir: str, mono: float, boot: float) -> None:
        written.append(mono)
        lastoutput.write_mark(fdir, mono, boot)

    monkeypatch.setattr(outputnotes, "write_mark", counted)
    mark = OutputMark(loop, str(tmp_path), loop.t, lambda: loop.t + 600)  # type: ignore[arg-type]
    os.symlink(tmp_path, os.path.join(tmp_path.parent, "log"))  # read as a session dir's log/
    assert lastoutput.read_mark(str(tmp_path.parent)) == (100.0, 700.0)  # the run's start
    for _ in range(50):  # a chatty run: output every 0.1 s for 5 s
        loop.run(0.1)
        mark.said(loop.t)
    assert len(written) <= 1 + 5 / MARK_EVERY_S + 1, written
    last = loop.t
    loop.run(MARK_EVERY_S)  # quiet now: the mark catches up with the last output
    assert lastoutput.read_mark(str(tmp_path.parent)) == pytest.approx((last, last + 600))
    count = len(written)
    loop.run(10 * MARK_EVERY_S)
    assert not loop.due and len(written) == count  # quiet: nothing written, no timer runs on


def test_a_mark_that_cannot_be_written_is_removed_not_left_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = Timers()
    OutputMark(loop, str(tmp_path), loop.t, lambda: loop.t)  # type: ignore[arg-type]
    assert (tmp_path / "output.last").exists()

    def full(fdir: str, mono: float, boot: float) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputnotes, "write_mark", full)
    mark = OutputMark(loop, str(tmp_path), loop.t, lambda: loop.t)  # type: ignore[arg-type]
    assert not (tmp_path / "output.last").exists()  # the readers fall back to the log's time
    monkeypatch.setattr(outputnotes, "write_mark", lastoutput.write_mark)
    loop.run(MARK_EVERY_S)  # the disk has room again: marked on the next look
    assert (tmp_path / "output.last").exists() and mark.written == 100.0
