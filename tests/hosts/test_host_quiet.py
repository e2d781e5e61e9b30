"""A worker on a real SSH host is judged quiet on that host's own monotonic clock (issue 51):
its satellite reads the supervisor's log/output.last there and answers an age, so the home's
wall clock a week off (libfaketime, the home's `ls` alone) moves neither its IDLE nor its
health, and a worker quiet past the bound there reads stuck at home."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop
from tests.integration.test_pulse_clock import SITE

LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STUCK_S = 3
WEEK = "+7d"


def _row(d: Path, **env: str) -> dict[str, Any]:
    got = looop(d, "ls", "--json", env={"LOOOP_WORKER_STUCK_SECS": str(STUCK_S), **env})
    assert got.returncode == 0, got.stderr
    return next(r for r in json.loads(got.stdout) if r["id"] == "qw1")


@pytest.mark.timeout(120)
def test_a_far_workers_quiet_is_its_hosts_measure_whatever_the_homes_wall_clock(
    home: Home, tmp_path: Path
) -> None:
    if not LIB.exists():
        pytest.skip(f"libfaketime is not installed ({LIB})")
    d = home.data
    cmd = "sh -c 'echo ready; exec sleep 300' # {{prompt_file}}"
    since = time.monotonic()  # it cannot have printed before its start: IDLE's upper bound
    got = looop(d, "worker", "start", "qw1", "x", "--host", "h1", "--command", cmd)
    assert got.returncode == 0, got.stderr
    seen = looop(d, "expect", "qw1", "ready", "--timeout", "30s")
    assert seen.returncode == 0, seen.stderr
    site = tmp_path / "site"  # libfaketime's clock_nanosleep fails: sleep through select
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    ahead = {
        "LD_PRELOAD": str(LIB),
        "FAKETIME": WEEK,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": str(site),
    }
    row = _row(d, **ahead)  # the home's wall clock a week ahead of the host's
    assert row["alive"] and row["host"] == "h1", row
    assert row["idle_s"] is not None and row["idle_s"] <= time.monotonic() - since + 2, row
    deadline = since + STUCK_S + 30
    while (row := _row(d, **ahead))["health"] != "stuck" and time.monotonic() < deadline:
        time.sleep(0.5)  # polled: the home learns the host's quiet only by asking
    assert row["health"] == "stuck", row
    assert STUCK_S <= row["idle_s"] <= time.monotonic() - since + 2, row
    assert looop(d, "kill", "qw1").returncode == 0
