"""A sandboxed worker paused at its budget is paused whole: its agent runs in bubblewrap's new
session, beyond the reach of a SIGSTOP of the worker's group, so the pause freezes everything
the worker runs (sessions/hold) and its counter inside the box stops, then goes on at
`looop worker continue` — with the real srt and bubblewrap."""

from __future__ import annotations

import json
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


NOOP = 'printf \'%s\' \'{"action":"noop"}\' > "$LOOOP_DECISION"'
SAY = '"$LOOOP_BIN" cost report worker w2 custom 0.05 > "$LOOOP_WORKSPACE/said" 2>&1\n'
REPORTER = SAY + COUNTER  # a custom command under the claude runner: it reports its own


def test_a_sandboxed_custom_worker_reporting_past_its_budget_is_paused_whole(
    tmp_path: Path, srt: Path
) -> None:
    """Its own report, made through its box's door, is what its budget counts (issue 54)."""
    box = Box(tmp_path, srt, "on")
    config = json.loads((box.data / "config.json").read_text())
    config["runners"]["claude"]["tick"] = NOOP  # a beat that decides nothing
    (box.data / "config.json").write_text(json.dumps(config))
    count = Paths.at(box.data).rooms / "w2" / "work" / "count"
    box.start("w2", REPORTER, "--budget", "0.01")
    try:
        wait_until(lambda: _count(count) > 0, 60, "the boxed counter to count")
        said = (count.parent / "said").read_text()
        assert "recorded $0.05 for worker w2" in said, said
        ticked = box.looop("tick", timeout=120)  # the beat's meter holds it to its budget
        assert ticked.returncode == 0, ticked.stderr
        wait_until(lambda: _still(count, 0.5), 10, "the boxed counter to stop")
        listed = box.looop("ls")
        assert "over budget" in listed.stdout, listed.stdout
    finally:
        box.looop("kill", "w2")
