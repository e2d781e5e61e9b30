"""Temp files left by a killed atomic write are swept; a live writer's temp is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.home.paths import Paths
from looop.loop.pulse import Pulse, sweep_temps
from tests.helpers import wire

pytestmark = pytest.mark.process  # real processes: not make check's tier


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return int(proc.stdout)


def test_a_killed_writers_temp_goes_and_the_state_stays(tmp_path: Path) -> None:
    paths = Paths.at(tmp_path / "data")
    paths.goals.mkdir(parents=True)
    store.atomic_write(paths.goal("ship"), "goal: ship\n")
    # what a SIGKILL between create and rename leaves
    stale = paths.goals / f".ship.md.tmp.{_dead_pid()}.abc123"
    stale.write_text("half")
    mine = paths.goals / f".ship.md.tmp.{os.getpid()}.def456"
    mine.write_text("being written")
    lookalike = paths.goals / ".notes.tmp.txt"  # a user's file that only looks like a temp
    lookalike.write_text("keep")

    gone = sweep_temps(paths.written_dirs(), time.time())

    assert gone == [stale]
    assert not stale.exists()
    assert mine.exists() and lookalike.exists()
    assert paths.goal("ship").read_text() == "goal: ship\n"


def test_an_old_temp_goes_even_if_its_pid_was_reused(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    old = d / f".status.json.tmp.{os.getpid()}.a1b2c3"
    old.write_text("{}")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert sweep_temps([d], time.time()) == [old]


def test_the_pulse_sweeps_at_start(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    ctx.paths.sessions.mkdir(parents=True)
    (ctx.paths.sessions / "w1").mkdir()
    stale = ctx.paths.sessions / "w1" / f".status.json.tmp.{_dead_pid()}.0a0b0c"
    stale.write_text("{")
    Pulse(ctx, max_beats=1).run()
    assert not stale.exists()


def test_a_killed_writers_temp_in_worktrees_and_a_sandbox_folder_goes(tmp_path: Path) -> None:
    """A start writes worktrees/<id>.json and sandbox/<id>/srt.json atomically too; the files
    the worker works in (its checkout, its sandbox's work/) are not swept."""
    paths = Paths.at(tmp_path / "data")
    (paths.worktrees / "w1").mkdir(parents=True)
    (paths.sandbox / "w1" / "work").mkdir(parents=True)
    dead = _dead_pid()
    record = paths.worktrees / f".w1.json.tmp.{dead}.abc123"
    settings = paths.sandbox / "w1" / f".srt.json.tmp.{dead}.abc123"
    in_checkout = paths.worktrees / "w1" / f".x.tmp.{dead}.abc123"
    in_work = paths.sandbox / "w1" / "work" / f".x.tmp.{dead}.abc123"
    for f in (record, settings, in_checkout, in_work):
        f.write_text("half")

    gone = sweep_temps(paths.written_dirs(), time.time())

    assert sorted(gone) == sorted([record, settings])
    assert in_checkout.exists() and in_work.exists()
