"""Containment without root: a user who is not root can make no cgroup, so a worker's runs are
contained by its supervisor's subreaper sweep — and, should that supervisor be SIGKILLed, by
its keeper (sessions/supervisor.keep). Run as a real user made for the test (root makes it; anyone
else skips): the `setsid`, `nohup` and `env -i` children the leaky agent leaves die with
`kill`, with `down`, and when the supervisor is SIGKILLed; `ls` never says the worker is
dead while any of them runs."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sessions.state import get_session
from tests.helpers import process_ended, until, wait_until
from tests.nonroot import As
from tests.nonroot import nonroot as as_nonroot
from tests.procwatch import FIXTURES, by_argv, describe, kill_all

pytestmark = [pytest.mark.timeout(180), pytest.mark.process]

LEFT = 5  # the agent itself, app-server, double fork, env -i, nohup


@pytest.fixture
def nonroot() -> Iterator[As]:
    with as_nonroot() as who:
        yield who


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
