"""A sandboxed worker paused at its budget is paused whole: its agent runs in bubblewrap's new
session, beyond the reach of a SIGSTOP of the worker's group, so the pause freezes everything
the worker runs (sessions/hold) and its counter inside the box stops, then goes on at
`looop worker continue` — with the real srt and bubblewrap."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.sessions.hold import pause
from tests.helpers import until, wait_until
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(120)

COUNTER = 'i=0; while :; do i=$((i+1)); echo $i > "$LOOOP_WORKSPACE/count"; sleep 0.05; done\n'


def _count(path: Path) -> int:
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return -1


def _still(path: Path, secs: float) -> bool:
    at = _count(path)
    return not until(lambda: _count(path) != at, secs)


def test_a_paused_sandboxed_worker_stops_counting_and_goes_on_at_continue(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    count = Paths.at(box.data).rooms / "w1" / "work" / "count"
    box.start("w1", COUNTER)
    try:
        wait_until(lambda: _count(count) > 0, 60, "the boxed counter to count")
        assert pause(box.data, "w1")  # what the budget's breaker calls
        # settled: once it stops, half a second (ten of its steps) passes with no step
        wait_until(lambda: _still(count, 0.5), 10, "the boxed counter to stop")
        stuck = _count(count)
        assert not until(lambda: _count(count) != stuck, 1.0), "it counted while paused"
        done = box.looop("worker", "continue", "w1")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: _count(count) > stuck, 10, "the boxed counter to go on")
    finally:
        box.looop("kill", "w1")
