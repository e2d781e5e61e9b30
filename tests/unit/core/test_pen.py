"""core/cgroup.Pen: the pulse's sensors' cgroup, kept between beats with the pulse sitting in
it, so a beat moves no process (a move costs the kernel a grace period) — with real cgroups
and real processes: what else the process spawns is still born at home, and what a sensor
leaves behind still dies with the window."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core import cgroup, proc, procs
from looop.core.procs import Containment
from tests.clocks import FixedClock
from tests.helpers import until
from tests.procwatch import Zombies, by_argv, cgroup_of, cgroups_here, describe, kill_all

pytestmark = [pytest.mark.process, pytest.mark.timeout(60)]


needs_cgroups = pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")


def _path(text: str) -> str:
    """The v2 (or else v1 freezer) cgroup path in a /proc/<pid>/cgroup text."""
    v2, v1 = cgroup.own_paths(text)
    return v2 or v1 or ""


def _own() -> str:
    return cgroup_of(os.getpid())


@pytest.fixture
def pen() -> Iterator[cgroup.Pen]:
    p = cgroup.Pen()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PEN_TEST": str(tmp_path)}


def _window(
    pen: cgroup.Pen, argvs: list[list[str]], cwd: Path, env: dict[str, str]
) -> dict[str, int]:
    """One beat's window: spawn every argv as a sensor, wait for each, close; what was killed."""
    with Containment(FixedClock(), shared=True, pen=pen) as c:
        spawner = proc.Spawner()
        with c.batch():
            runs = [
                (t, spawner.spawn(a, cwd=cwd, env=env, contain=c, token=t))
                for t, a in ((c.token(), a) for a in argvs)
            ]
        for token, run in runs:
            assert run.wait(timeout=20) == 0
            c.ended(token)
        return c.close()


@needs_cgroups
def test_the_process_stays_in_its_pen_from_one_window_to_the_next(
    pen: cgroup.Pen, env: dict[str, str], tmp_path: Path, zombies: Zombies
) -> None:
    home = _own()
    assert _window(pen, [["/bin/true"], ["/bin/true"]], tmp_path, env) == {}
    first = pen.group
    assert first is not None and os.path.isdir(first.path)
    parked = _own()
    assert parked != home and cgroup.home_of(parked) == home  # nested right under home
    assert first.path.endswith(parked) and os.getpid() in first.pids()
    assert _window(pen, [["/bin/true"]], tmp_path, env) == {}
    assert pen.group is first and _own() == parked  # the same pen, never left
    pen.close()
    assert _own() == home and not os.path.exists(first.path)
    assert zombies() == []


@needs_cgroups
@pytest.mark.parametrize("how", ["subprocess", "posix_spawn", "fork", "inherited-marker"])
def test_what_it_spawns_between_windows_is_born_at_home(
    pen: cgroup.Pen, env: dict[str, str], tmp_path: Path, how: str
) -> None:
    """A notification hook, a decider, a git call: never among the sensors, whose pen a
    leftover ends; the process leaves its pen just before the spawn."""
    home = _own()
    _window(pen, [["/bin/true"]], tmp_path, env)
    assert _own() != home
    out = tmp_path / "cgroup.txt"
    argv = ["/bin/sh", "-c", f"cat /proc/self/cgroup > {out}"]
    if how == "subprocess":
        subprocess.run(argv, check=True, timeout=20)
    elif how == "inherited-marker":  # a marker of another process's runs is not ours
        marked = {**env, procs.MARK: "1.0badc0de.1"}
        subprocess.run(argv, check=True, timeout=20, env=marked)
    elif how == "posix_spawn":
        pid = os.posix_spawn(argv[0], argv, env)
        assert os.waitpid(pid, 0)[1] == 0
    else:
        pid = os.fork()
        if pid == 0:
            os.execv(argv[0], argv)
        assert os.waitpid(pid, 0)[1] == 0
    assert _path(out.read_text()) == home
    assert _own() == home
    # the next window goes back in, to the same pen
    group = pen.group
    _window(pen, [["/bin/true"]], tmp_path, env)
    assert pen.group is group and _own() != home


@needs_cgroups
def test_what_a_sensor_leaves_in_the_pen_dies_with_its_window(
    pen: cgroup.Pen, env: dict[str, str], tmp_path: Path, zombies: Zombies
) -> None:
    """An env -i setsid escapee (no marker, no session of ours): the window's end finds it in
    the pen, takes the process home and kills the pen with what is in it; the next window
    makes a new one."""
    home = _own()
    tag = f"pen{os.getpid()}x{os.urandom(4).hex()}"
    py = f"{sys.executable} -c 'import time; time.sleep(1000)' {tag}"
    escape = ["/bin/bash", "-c", f"env -i setsid -f {py} </dev/null >/dev/null 2>&1"]
    try:
        _window(pen, [["/bin/true"]], tmp_path, env)
        old = pen.group
        assert old is not None

        killed = _window(pen, [escape], tmp_path, env)
        assert by_argv(tag) == [], describe(by_argv(tag))
        assert sum(killed.values()) == 1
        assert _own() == home and pen.group is None and not os.path.exists(old.path)
        _window(pen, [["/bin/true"]], tmp_path, env)
        assert pen.group is not None and _own() != home
        assert zombies() == []
    finally:
        kill_all(by_argv(tag))


@needs_cgroups
def test_a_session_group_with_a_pen_inside_is_killed_and_removed_whole(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The pulse sits in its pen, inside its session's group: the session's kill reaches it
    and the group's removal removes the pen first."""
    tag = f"sess{os.getpid()}x{os.urandom(4).hex()}"
    session = cgroup.make(f"pen-test-{os.getpid()}-{os.urandom(3).hex()}")
    assert session is not None
    code = (
        "import sys, time\n"
        "from looop.core import cgroup\n"
        "sys.stdin.readline()  # in the session's group first: its pen is made inside it\n"
        "print('in' if cgroup.Pen().enter() else 'out', flush=True)\n"
        f"time.sleep(1000)  # {tag}\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, tag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert session.add(child.pid)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout is not None and child.stdout.readline() == "in\n"
        pens = [p for p in session.tree() if os.path.basename(p).startswith(cgroup.PEN)]
        assert len(pens) == 1 and session.pids() == [child.pid]
        session.kill()
        assert child.wait(timeout=20) == -9
        assert until(lambda: session.live() == [])
        assert session.remove() and not os.path.exists(pens[0])
    finally:
        child.kill()
        child.wait(timeout=20)
        session.remove()


@needs_cgroups
def test_a_new_pen_removes_the_empty_groups_of_processes_that_died_in_theirs(
    pen: cgroup.Pen, env: dict[str, str], tmp_path: Path
) -> None:
    """A pulse or a beat SIGKILLed in its pen (or in a run group) leaves an empty group that
    nobody else removes: the next pen made beside it does."""
    gone = subprocess.Popen(["/bin/true"])
    gone.wait(timeout=20)
    home = _own()
    mounts = [m for m in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup") if os.path.isdir(m + home)]
    base = mounts[0] + home.rstrip("/")
    folder = mounts[0] + cgroup.folder_for(home)
    stale = [f"{base}/{cgroup.PEN}.{gone.pid}", f"{folder}/run-{gone.pid}.0badc0de.all"]
    kept = f"{folder}/run-{os.getpid()}.0badc0de.all"  # a live process's
    for path in [*stale, kept]:
        os.makedirs(path, exist_ok=True)
    try:
        _window(pen, [["/bin/true"]], tmp_path, env)
        assert [os.path.exists(p) for p in stale] == [False, False]
        assert os.path.isdir(kept)
    finally:
        for path in [*stale, kept]:
            with contextlib.suppress(OSError):
                os.rmdir(path)


@needs_cgroups
def test_a_pen_removed_while_the_process_was_out_is_made_again(pen: cgroup.Pen) -> None:
    """A pen is only a folder: someone may remove it while its process is home (a sweep, a
    human); the next window makes it again instead of giving up on cgroups."""
    first = pen.enter()
    assert first is not None
    pen.leave()
    os.rmdir(first.path)
    again = pen.enter()
    assert again is not None and not pen.broken and os.path.isdir(again.path)
    assert _own().endswith(f"/{cgroup.PEN}.{os.getpid()}")
