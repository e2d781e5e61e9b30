"""A wall-clock step under live workers: `stuck` is judged by time the step does not move.

The step is libfaketime's, as in test_pulse_clock.py: every looop process of the home (the
worker start, the session host, the supervisors, `looop ls`) sees its wall clock jump at once
while CLOCK_MONOTONIC does not; output.log's mtime stays the kernel's real time, as a file
written before a real step keeps the old clock's. A quiet worker is not stuck after a step
forward of ten minutes or a day, and one really quiet past the bound is stuck after a step
back a day, while a worker printing every half second never is. Skipped without libfaketime."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.helpers import stop_sessions, wire
from tests.integration.test_pulse_clock import _env, _step_clock, shared_clock

pytestmark = pytest.mark.timeout(150)

STUCK_S = 20  # worker_stuck_secs: past any one `ls` on a loaded machine
QUIET = "bash -c 'echo started; exec sleep 600' # {{prompt_file}}"
CHATTY = "bash -c 'while :; do echo tick; sleep 0.5; done' # {{prompt_file}}"

__all__ = ["shared_clock"]  # the fixture, used by name


def _looop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _health(env: dict[str, str]) -> dict[str, str]:
    r = _looop(env, "ls", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {str(w["id"]): str(w["health"]) for w in json.loads(r.stdout) if w["id"] != "pulse"}


def test_a_clock_step_neither_makes_a_quiet_worker_stuck_nor_hides_a_stuck_one(
    ctx: Ctx, tmp_path: Path, shared_clock: str
) -> None:
    wire(ctx, [])
    offset = tmp_path / "offset"
    env = _env(ctx, tmp_path, offset) | {
        "FAKETIME_SHARED": shared_clock,
        "LOOOP_WORKER_STUCK_SECS": str(STUCK_S),
    }
    began = time.monotonic()  # before the quiet worker's only output
    try:
        for wid, cmd in (("quiet", QUIET), ("chatty", CHATTY)):
            r = _looop(env, "worker", "start", wid, "work", "--command", cmd)
            assert r.returncode == 0, r.stdout + r.stderr
        r = _looop(env, "expect", "quiet", "started", "--timeout", "20s")
        assert r.returncode == 0, r.stdout + r.stderr
        quiet_since = time.monotonic()  # it printed by now and prints no more
        assert _health(env) == {"quiet": "busy", "chatty": "busy"}
        for step in (600, 86400):  # a resumed laptop's NTP step, a VM restored a day on
            _step_clock(offset, step, env)
            got = _health(env)
            assert time.monotonic() - quiet_since < STUCK_S, "too slow a host to judge: rerun"
            assert got == {"quiet": "busy", "chatty": "busy"}, (step, got)
        _step_clock(offset, -86400, env)  # and back past the start: a day behind
        deadline = quiet_since + STUCK_S + 30
        while (got := _health(env))["quiet"] != "stuck" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert got["quiet"] == "stuck", got  # really quiet past the bound: a step hides it not
        assert time.monotonic() - began >= STUCK_S  # and not before its time
        assert got["chatty"] == "busy", got
    finally:
        offset.write_text("+0\n")
        _looop(env, "down")
        stop_sessions(ctx.paths.data)
