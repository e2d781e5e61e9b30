"""Containment without root: a user who is not root can make no cgroup, so a worker's runs are
contained by its supervisor's subreaper sweep — and, should that supervisor be SIGKILLed, by
its keeper (sessions/keeper.py). Run as a real user made for the test (root makes it; anyone
else skips): the `setsid`, `nohup` and `env -i` children the leaky agent leaves die with
`kill`, with `down`, and when the supervisor is SIGKILLed; `ls` never says the worker is
dead while any of them runs."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import looop
from looop.sessions.state import get_session
from tests.helpers import process_ended, until, wait_until
from tests.procwatch import FIXTURES, by_argv, describe, kill_all

pytestmark = [pytest.mark.timeout(180), pytest.mark.process]

USER = "looopkeep"
LEFT = 5  # the agent itself, app-server, double fork, env -i, nohup
SRC = str(Path(looop.__file__).resolve().parents[1])


class As:
    """looop run as a user who is not root, on a data dir of their own."""

    def __init__(self, uid: int, gid: int, python: str, home: Path) -> None:
        self.uid, self.gid, self.python, self.home = uid, gid, python, home
        self.data = home / "data"
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "IS_SANDBOX": "1",
            "LOOOP_DATA_DIR": str(self.data),
            "LOOOP_RUNTIME_DIR": str(home / "rt"),
            "PYTHONPATH": os.pathsep.join([SRC, sysconfig.get_paths()["purelib"]]),
        }

    def argv(self, *cmd: str) -> list[str]:
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        return ["setpriv", *ids, "--", *cmd]

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(self.python, "-m", "looop", *args),
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=60,
        )


def _user() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "-M", "-s", "/usr/sbin/nologin", USER], capture_output=True, timeout=30
        )
        if made.returncode not in (0, 9):  # 9: made meanwhile by a neighbour test
            pytest.skip(f"useradd failed: {made.stderr.decode().strip()}")
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


@pytest.fixture
def nonroot() -> Iterator[As]:
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("making a user who is not root needs root, useradd and setpriv")
    uid, gid = _user()
    home = Path(tempfile.mkdtemp(prefix="looop-nr-", dir="/tmp"))
    os.chown(home, uid, gid)
    who = None
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        who = As(uid, gid, python, home)
        probe = subprocess.run(  # from a shell: what the user's own processes can start
            who.argv("/bin/sh", "-c", f"exec {python} -c 'import looop.cli.root, pyte'"),
            env=who.env,
            cwd=home,
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            break
    else:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip("no Python the user can run imports looop and its dependencies")
    config = {"default": "x", "runners": {"x": {"tick": "true", "worker": "cat {{prompt_file}}"}}}
    assert who.looop("init", "--no-sandbox").returncode == 0
    (who.data / "config.json").write_text(json.dumps({**config, "max_daily_usd": 0}))
    yield who
    who.looop("down")
    kill_all(_pids_of(uid))
    shutil.rmtree(home, ignore_errors=True)


def _pids_of(uid: int) -> list[int]:
    """Every process of the test's user (only this test runs as them)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def _ignores_hup(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ign = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("SigIgn:")), "0")
    return bool(int(ign, 16) & (1 << (signal.SIGHUP - 1)))


def _leaky(who: As, wid: str) -> str:
    tag = f"nr{os.getpid()}x{os.urandom(4).hex()}"
    agent = f"{FIXTURES / 'leaky_agent.sh'} {tag} {who.python} {{{{prompt_file}}}}"
    r = who.looop("worker", "start", wid, "x", "--command", agent)
    assert r.returncode == 0, r.stdout + r.stderr

    def in_place() -> bool:
        pids = by_argv(tag)
        return len(pids) == LEFT and all(_ignores_hup(p) for p in pids)

    wait_until(in_place, 30, f"{LEFT} processes tagged {tag}, each ignoring SIGHUP")
    meta = json.loads((who.data / "sessions" / wid / "meta.json").read_text())
    assert meta["contain"] == "sweep", "a cgroup was made: the user is not without one"
    return tag


def test_a_nonroot_workers_leftovers_die_with_kill_and_down(nonroot: As) -> None:
    t1, t2 = _leaky(nonroot, "w1"), _leaky(nonroot, "w2")
    try:
        r = nonroot.looop("kill", "w1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert by_argv(t1) == [], f"outlived `looop kill`: {describe(by_argv(t1))}"
        r = nonroot.looop("down")
        assert r.returncode == 0, r.stdout + r.stderr
        assert by_argv(t2) == [], f"outlived `looop down`: {describe(by_argv(t2))}"
    finally:
        kill_all(by_argv(t1) + by_argv(t2))


def test_a_sigkilled_nonroot_supervisors_leftovers_die_before_ls_says_dead(
    nonroot: As,
) -> None:
    tag = _leaky(nonroot, "w1")
    try:
        sup = get_session(nonroot.data, "w1").supervisor_pid
        assert sup is not None
        os.kill(sup, signal.SIGKILL)  # the OOM killer's way
        wait_until(lambda: process_ended(sup), 10, "the supervisor's death")
        said_dead_while_running: list[str] = []

        def over() -> bool:
            alive = get_session(nonroot.data, "w1").alive  # first: what `ls` would say …
            left = by_argv(tag)  # … then what still runs
            if not alive and left:
                said_dead_while_running.append(describe(left))
            return not alive and not left

        finished = until(over, 20)
        assert not said_dead_while_running, f"dead in ls, yet running: {said_dead_while_running[0]}"
        assert finished, f"still running: {describe(by_argv(tag))}"
        r = nonroot.looop("ls", "-a", "--json")
        assert r.returncode == 0, r.stderr
        row = next(row for row in json.loads(r.stdout) if row["id"] == "w1")
        assert not row["alive"], row  # and by now nothing of it runs (above)
        r = nonroot.looop("down")
        assert r.returncode == 0, r.stdout + r.stderr
        assert by_argv(tag) == [], f"outlived `looop down`: {describe(by_argv(tag))}"
    finally:
        kill_all(by_argv(tag))
