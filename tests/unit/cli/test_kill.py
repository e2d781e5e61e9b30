"""`looop kill` of a worker here ends it without loading the SSH and Kubernetes rooms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.where import host_record
from looop.remote.hosts import record_file
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from tests.helpers import clean_env


@pytest.mark.unit
def test_a_remote_workers_record_is_where_the_hosts_room_keeps_it(tmp_path: Path) -> None:
    # the kill looks for it with one stat before loading the hosts' rooms
    assert host_record(str(tmp_path), "w7") == str(record_file(tmp_path, "w7"))


@pytest.mark.process
@pytest.mark.timeout(60)
def test_a_kill_of_a_worker_here_loads_no_hosts_room(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(tmp_path, data)  # in this process, not a host
    looop = str(Path(sys.executable).with_name("looop"))
    subprocess.run([looop, "init"], env=env, check=True, capture_output=True)
    spawn(data, "w1", ["cat"], cwd=data, env=env)
    got = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "looop", "kill", "w1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert got.returncode == 0, got.stderr[-500:]
    loaded = {ln.rsplit("|", 1)[-1].strip() for ln in got.stderr.splitlines() if "|" in ln}
    assert "looop.act.executor" in loaded  # it really ran the move
    assert not {m for m in loaded if m.startswith(("looop.remote.ssh", "looop.remote.kube"))}
    assert not get_session(data, "w1").alive
