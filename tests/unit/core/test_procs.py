"""core/procs containment, one window at a time, with real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core import cgroup, proc, procs, procstat
from looop.core.procs import Containment
from tests.clocks import FixedClock
from tests.helpers import until
from tests.procwatch import (
    FIXTURES,
    Zombies,
    by_argv,
    cgroups_here,
    children,
    describe,
    kill_all,
    tagged,
)

pytestmark = pytest.mark.process  # real processes: not make check's tier

ESCAPE = [sys.executable, str(FIXTURES / "escape.py")]


def _subreaper() -> int | None:
    return procs._prctl(procs.PR_GET_CHILD_SUBREAPER, 0)


def _start(c: Containment, env: dict[str, str], mode: str, *, mark: bool = True) -> str:
    """Run the escape fixture to completion as a contained run; its token."""
    token = c.token()
    proc = subprocess.Popen([*ESCAPE, mode], env=c.env(env, token) if mark else env)
    c.started(token, proc.pid)
    assert proc.wait(timeout=20) == 0
    return token


@pytest.fixture
def env(tmp_path: object) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PROCS_TEST": str(tmp_path)}


@pytest.mark.timeout(30)
def test_escapees_of_a_live_run_wait_for_it_to_end(env: dict[str, str], zombies: Zombies) -> None:
    tag = env["PROCS_TEST"]
    try:
        with Containment(FixedClock()) as c:
            assert c.active and _subreaper() == 1
            token = _start(c, env, "chain")
            assert c.sweep() == {}  # its run has not ended: its background work is allowed
            assert len(tagged("PROCS_TEST", tag)) == 2
            c.ended(token)
            assert c.sweep() == {token: 2}  # the daemon, then the child it kept
            assert tagged("PROCS_TEST", tag) == []
        assert _subreaper() == 0
        assert zombies() == []
    finally:
        kill_all(tagged("PROCS_TEST", tag))


@pytest.mark.timeout(30)
def test_unmarked_orphans_are_not_ours_to_kill(env: dict[str, str]) -> None:
    """Adopted but not attributable (e.g. a notification hook's daemon): left alone."""
    tag = env["PROCS_TEST"]
    strays: list[int] = []
    try:
        with Containment(FixedClock()) as c:
            _start(c, env, "doublefork", mark=False)
            strays = tagged("PROCS_TEST", tag)
            assert len(strays) == 1 and strays[0] in children()  # adopted while the window is open
            assert c.close() == {}
        assert tagged("PROCS_TEST", tag) == strays
    finally:
        kill_all(strays)
        for pid in strays:  # ours to reap: it was adopted
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


@pytest.mark.timeout(30)
def test_escapees_that_died_on_their_own_are_reaped_not_left_as_zombies(
    env: dict[str, str],
    zombies: Zombies,
) -> None:
    with Containment(FixedClock()) as c:
        token = c.token()
        # the shell exits at once; its setsid child dies a moment later, adopted by us
        proc = subprocess.Popen(
            ["sh", "-c", "setsid sh -c 'exec 0<&-; read x' & echo $!"],
            env=c.env(env, token),
            stdout=subprocess.PIPE,
        )
        c.started(token, proc.pid)
        out, _ = proc.communicate(timeout=20)
        orphan = int(out)
        c.ended(token)
        # it has died on its own (a zombie, ours by adoption) before the window closes: a
        # process still mid-exit has no readable marker yet, so wait for its death to land
        assert until(lambda: (procstat.stat_of(orphan) or ("X",))[0] in ("Z", "X"))
        assert procstat.stat_of(orphan) is None or procstat.stat_of(orphan)[1] == os.getpid()
    assert zombies() == []
    assert procstat.stat_of(orphan) is None


@pytest.mark.timeout(10)
def test_a_process_that_was_already_a_subreaper_stays_one() -> None:
    assert procs._prctl(procs.PR_SET_CHILD_SUBREAPER, 1) == 0
    try:
        with Containment(FixedClock()) as c:
            assert c.active and c.was_on
        assert _subreaper() == 1
    finally:
        procs._prctl(procs.PR_SET_CHILD_SUBREAPER, 0)


@pytest.mark.timeout(30)
def test_a_descendant_that_clears_its_environment_is_known_by_its_session(
    env: dict[str, str],
) -> None:
    tag = env["PROCS_TEST"]
    try:
        with Containment(FixedClock()) as c:
            token = c.token()
            # the run leads its own session, as sensors and run_shell do
            proc = subprocess.Popen(
                ["sh", "-c", f"env -i PROCS_TEST='{tag}' sleep 1000 >/dev/null 2>&1 &"],
                env=c.env(env, token),
                start_new_session=True,
            )
            c.started(token, proc.pid)
            assert proc.wait(timeout=20) == 0
            # once `env -i` has exec'd sleep there is no marker left to find
            assert until(lambda: [procs.marker_of(p) for p in tagged("PROCS_TEST", tag)] == [None])
            c.ended(token)
            assert c.sweep() == {token: 1}
        assert tagged("PROCS_TEST", tag) == []
    finally:
        kill_all(tagged("PROCS_TEST", tag))


@pytest.mark.timeout(30)
@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
@pytest.mark.parametrize("how", ["popen", "posix_spawn"])
def test_env_i_setsid_dies_with_its_run_in_the_runs_cgroup(
    env: dict[str, str],
    tmp_path: Path,
    how: str,
    zombies: Zombies,
) -> None:
    """No marker, no session to know it by: only the run's cgroup still holds it."""
    tag = f"envi{os.getpid()}x{os.urandom(4).hex()}"
    quiet = "</dev/null >/dev/null 2>&1"
    py = f"{sys.executable} -c 'import time; time.sleep(1000)' {tag}"
    # a background child, and one that setsid forks off (`-f`) so the shell need not wait
    line = f"env -i /usr/bin/setsid {py} {quiet} & env -i setsid -f {py} {quiet}"
    argv = ["/bin/bash", "-c", line]
    try:
        with Containment(FixedClock()) as c:
            token = c.token()
            if how == "popen":
                p: proc.Proc = proc.spawn(argv, cwd=tmp_path, env=env, contain=c, token=token)
            else:
                p = proc.Spawner().spawn(argv, cwd=tmp_path, env=env, contain=c, token=token)
            assert p.wait(timeout=20) == 0
            assert until(lambda: len(by_argv(tag)) == 2), describe(by_argv(tag))
            group = c.groups[token].path
            assert os.getpid() not in cgroup.Group("", group, "").pids()  # it went home
            c.ended(token)
            assert c.sweep() == {token: 2}
            assert by_argv(tag) == []
            assert not os.path.exists(
                c.groups.get(token, cgroup.Group("", "/nonexistent", "")).path
            )
        assert zombies() == []
    finally:
        kill_all(by_argv(tag))


@pytest.mark.timeout(30)
@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
def test_a_shared_group_holds_every_run_of_a_beat_and_ends_with_the_last(
    env: dict[str, str],
    tmp_path: Path,
    zombies: Zombies,
) -> None:
    """A beat's sensors share one cgroup, entered once for the batch of spawns: an env -i
    setsid escapee of a run that ended lives until the last run of the window ends, then
    dies with the group, and the group is gone."""
    tag = f"shared{os.getpid()}x{os.urandom(4).hex()}"
    py = f"{sys.executable} -c 'import time; time.sleep(1000)' {tag}"
    argv = ["/bin/bash", "-c", f"env -i setsid -f {py} </dev/null >/dev/null 2>&1"]
    try:
        with Containment(FixedClock(), shared=True) as c:
            spawner = proc.Spawner()
            with c.batch():
                tokens = [c.token(), c.token()]
                runs = [
                    spawner.spawn(argv, cwd=tmp_path, env=env, contain=c, token=t) for t in tokens
                ]
                group = c.groups[tokens[0]]
                assert c.groups[tokens[1]] is group
                assert os.getpid() in group.pids()  # inside between the spawns
            assert os.getpid() not in group.pids()  # home after the batch
            assert [r.wait(timeout=20) for r in runs] == [0, 0]
            assert until(lambda: len(by_argv(tag)) == 2), describe(by_argv(tag))
            c.ended(tokens[0])
            assert c.sweep() == {}  # the other run has not ended: the group stays whole
            assert len(by_argv(tag)) == 2 and os.path.isdir(group.path)
            c.ended(tokens[1])
            assert c.sweep() == {"": 2}  # no marker left to tell whose
            assert by_argv(tag) == [] and not os.path.exists(group.path)
        assert zombies() == []
    finally:
        kill_all(by_argv(tag))
