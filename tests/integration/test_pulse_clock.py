"""A wall-clock step forward under a live pulse: its watchdog must not take it for a hang.

The step is libfaketime's: every looop process of the run (up, the session host, the pulse's
supervisor, the pulse, its runner) is preloaded with it and reads its offset from a file the
test rewrites, so the wall clock of all of them jumps at once while CLOCK_MONOTONIC does not
(DONT_FAKE_MONOTONIC), as on a real `date -s` or an NTP step. Skipped without libfaketime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.helpers import outside_env, wire

pytestmark = pytest.mark.timeout(150)

LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)
GRACE = 6  # the watchdog's grace (s): the pulse promises a heartbeat every GRACE/2 asleep

# libfaketime 0.9.10 fails an absolute clock_nanosleep on the monotonic clock it leaves alone
# (EINVAL from every time.sleep): the run's Pythons sleep through select instead.
SITE = """import os, select, time
if "faketime" in os.environ.get("LD_PRELOAD", ""):
    time.sleep = lambda secs: select.select([], [], [], secs) and None
"""


def _lib() -> str:
    for lib in LIBS:
        if os.path.exists(lib):
            return lib
    pytest.skip("libfaketime is not installed (apt-get install faketime)")


def _env(ctx: Ctx, tmp: Path, offset: Path) -> dict[str, str]:
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    offset.write_text("+0\n")
    return outside_env(
        LOOOP_DATA_DIR=str(ctx.paths.data),
        LOOOP_INTERVAL="3600",
        LOOOP_PULSE_RESTART_SECS="0.5",
        LOOOP_PULSE_RESTART_MAX_SECS="2",
        LOOOP_PULSE_WATCHDOG_SECS=str(GRACE),
        LD_PRELOAD=_lib(),
        FAKETIME_TIMESTAMP_FILE=str(offset),
        FAKETIME_CACHE_DURATION="0",
        FAKETIME_NO_CACHE="1",
        DONT_FAKE_MONOTONIC="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).strip(":"),
    )


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _pulse(env: dict[str, str]) -> dict[str, object]:
    r = _run(env, "status", "--json")
    assert r.returncode == 0, r.stderr
    pulse = json.loads(r.stdout)["pulse"]
    assert isinstance(pulse, dict)
    return pulse


def _holds(env: dict[str, str], pid: object, secs: float) -> None:
    """The same pulse runs, never restarted, for `secs` (real time): a check of an absence."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        pulse = _pulse(env)
        assert pulse["running"] and pulse["pid"] == pid, pulse
        assert pulse["restarts"] == 0, pulse
        time.sleep(0.5)


@pytest.mark.parametrize("step", ["+10m", "+1d"])
def test_a_forward_clock_step_never_stops_or_restarts_a_live_pulse(
    ctx: Ctx, tmp_path: Path, step: str
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    offset = tmp_path / "offset"
    env = _env(ctx, tmp_path, offset)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        r = _run(env, "expect", "pulse", "next beat in", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr  # asleep between beats
        pid = _pulse(env)["pid"]
        _holds(env, pid, GRACE + 1)  # its run is older than the grace: a hang would show
        offset.write_text(step + "\n")  # the wall clock jumps for every process at once
        _holds(env, pid, GRACE + 4)  # past the grace and two heartbeats: the same pulse
        r = _run(env, "log", "pulse")
        assert "watchdog" not in r.stdout and "restarting" not in r.stdout, r.stdout[-2000:]
    finally:
        offset.write_text("+0\n")
        r = _run(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr
