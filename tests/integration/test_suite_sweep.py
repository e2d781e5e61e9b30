"""The run-end sweep (tests/conftest.py): what a failed or interrupted test left running of
the run's own dirs ends, a SIGTERM ignored or not; a process of the user's is never touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _stop_strays
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

IGNORE = "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
SLEEP = "open(sys.argv[1], 'w').close()\ntime.sleep(60)\n"


def test_the_sweep_ends_what_names_the_runs_dirs_and_spares_the_rest(tmp_path: Path) -> None:
    run, user = tmp_path / "run", tmp_path / "run-user"  # a name the run's dir starts
    for d in (run / "cwd", user):
        d.mkdir(parents=True)

    def start(*args: str, cwd: Path = tmp_path, **env: str) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"ready-{len(started)}"
        argv = [sys.executable, "-c", IGNORE + SLEEP, str(ready), *args]
        p = subprocess.Popen(argv, cwd=cwd, env=env or None)
        started.append(p)
        wait_until(ready.exists, 20, "the process up, SIGTERM ignored")
        return p

    started: list[subprocess.Popen[bytes]] = []
    try:
        ours = [
            start(cwd=run / "cwd"),  # a box, a worker: in the run's worktree
            start(f"--base-path={run}/srv"),  # a git daemon, a `looop: web <data>`
            start(HOME=str(run / "home")),  # a supervisor, a pulse: the run's home
        ]
        users = [start(cwd=user), start(LOOOP_DATA_DIR=str(user))]
        _stop_strays((str(run),), grace=1.0)
        for p in ours:
            assert p.wait(timeout=10) == -9  # SIGTERM ignored: killed after the grace
        assert all(p.poll() is None for p in users)
    finally:
        for p in started:
            p.kill()
            p.wait(timeout=10)
