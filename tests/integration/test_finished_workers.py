"""Finished workers pile up over days: `status` counts them without reading them, `ls` hides
them, and an id started again after it finished is live at once (issue 31, item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sessions.client import wait
from looop.sessions.spawner import spawn
from tests.helpers import kill_sessions, outside_env

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]


def _looop(data: Path, *args: str) -> str:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(data), LOOOP_RUNTIME_DIR=os.environ["LOOOP_RUNTIME_DIR"])
    r = subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_status_counts_finished_workers_and_a_reused_id_is_live(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    try:
        for i in range(3):
            spawn(data, f"done{i}", ["true"], cwd=tmp_path, env=env)
        spawn(data, "slow", ["sh", "-c", "exit 3"], cwd=tmp_path, env=env)
        for sid in ("done0", "done1", "done2", "slow"):
            wait(data, sid, 30, SystemClock())
        spawn(data, "live", ["cat"], cwd=tmp_path, env=env)

        out = _looop(data, "status")
        assert "workers:   1 live, 4 finished (`looop ls -a`)" in out
        assert "  - live [" in out and "done1" not in out  # the finished are counted, not listed
        st = json.loads(_looop(data, "status", "--json"))
        rows = {w["id"]: w for w in st["workers"]}  # the JSON keeps every worker
        assert sorted(rows) == ["done0", "done1", "done2", "live", "slow"]
        assert rows["slow"]["exit_code"] == 3 and not rows["slow"]["alive"]
        assert st["workers_finished"] == 4
        assert [r.split()[0] for r in _looop(data, "ls").splitlines()[1:]] == ["pulse", "live"]
        assert "done2" in _looop(data, "ls", "-a")

        spawn(data, "done1", ["cat"], cwd=tmp_path, env=env)  # the id again, after it ended
        out = _looop(data, "status")
        assert "workers:   2 live, 3 finished" in out and "  - done1 [" in out
        assert "done1" in _looop(data, "ls")
    finally:
        kill_sessions(data)
