"""The sensors' spawner (core/proc.Spawner): posix_spawn where that is safe, with exactly what
Popen gave a child — its own session, stdin /dev/null, the working directory asked for, the
containment marker, none of our inheritable descriptors, SIGPIPE back to default — and
Popen itself where it is not safe."""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core import procstat
from looop.core.pool import Pool, Run
from looop.core.proc import Child, Proc, Spawner, Tail
from looop.core.procs import Containment
from looop.home.clock import SystemClock
from tests.helpers import until

pytestmark = pytest.mark.process  # real processes: not make check's tier


def _script(where: Path, body: str, name: str = "s.sh") -> str:
    path = where / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def _output(proc: Proc, secs: float = 10.0) -> bytes:
    """Everything the child printed on stdout, then reap it."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    while True:
        assert select.select([fd], [], [], secs)[0], "the child never finished its output"
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        got += chunk
    proc.wait(timeout=secs)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    return got


@pytest.fixture(autouse=True)
def lone_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The posix_spawn path is taken only by a lone thread; earlier tests in this xdist worker
    may leave idle pool threads behind (they never run our code), so count them out."""
    if not until(lambda: threading.active_count() == 1, 2):
        real, strays = threading.active_count, threading.active_count() - 1
        monkeypatch.setattr(threading, "active_count", lambda: real() - strays)


@pytest.fixture
def contain() -> Iterator[Containment]:
    """An open containment window (closing it kills whatever it marked and is still there)."""
    with Containment(SystemClock()) as c:
        yield c


def _spawn(body: str, tmp_path: Path, contain: Containment, name: str = "s.sh") -> tuple[Proc, str]:
    run_dir = tmp_path / "cwd"
    run_dir.mkdir(exist_ok=True)
    script = _script(tmp_path, body, name)
    token = contain.token()
    proc = Spawner().spawn(
        [script], cwd=run_dir, env={"PATH": "/usr/bin:/bin"}, contain=contain, token=token
    )
    return proc, token


@pytest.mark.timeout(20)
def test_a_child_leads_its_own_session_in_the_dir_asked_for_with_the_marker(
    tmp_path: Path, contain: Containment, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = os.getcwd()
    body = '#!/bin/sh\npwd\ncut -d" " -f1,5,6 /proc/$$/stat\necho "$LOOOP_CONTAIN"\ncat\necho end\n'
    proc, token = _spawn(body, tmp_path, contain)
    assert isinstance(proc, Child)
    assert os.getcwd() == here  # our own directory is back at once
    lines = _output(proc).decode().splitlines()
    assert lines[0] == str(tmp_path / "cwd")
    pid, pgid, sid = lines[1].split()
    assert pid == pgid == sid == str(proc.pid)  # one killpg reaches all it starts
    assert lines[2] == token
    assert lines[3] == "end"  # stdin is /dev/null: cat read nothing and did not wait
    assert proc.returncode == 0


@pytest.mark.timeout(20)
def test_our_inheritable_descriptors_do_not_reach_the_child(
    tmp_path: Path, contain: Containment
) -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        proc, _ = _spawn("#!/bin/sh\nls /proc/self/fd\n", tmp_path, contain)
        fds = {int(n) for n in _output(proc).split()}
    finally:
        os.close(r)
        os.close(w)
    assert w not in fds
    assert {0, 1, 2} <= fds


@pytest.mark.timeout(20)
def test_sigpipe_is_back_to_default_in_the_child(tmp_path: Path, contain: Containment) -> None:
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python ignores it here
    proc, _ = _spawn("#!/bin/sh\ngrep SigIgn /proc/$$/status\n", tmp_path, contain)
    mask = int(_output(proc).split()[1], 16)
    assert not mask & (1 << (signal.SIGPIPE - 1))


@pytest.mark.timeout(20)
def test_with_another_thread_running_it_leaves_the_start_to_popen(
    tmp_path: Path, contain: Containment
) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        proc, _ = _spawn("#!/bin/sh\npwd\n", tmp_path, contain)
        assert isinstance(proc, subprocess.Popen)
        assert _output(proc).decode().strip() == str(tmp_path / "cwd")
    finally:
        stop.set()
        other.join()


@pytest.mark.timeout(20)
def test_a_missing_interpreter_is_refused_like_popen_refuses_it(
    tmp_path: Path, contain: Containment
) -> None:
    with pytest.raises(OSError) as got:
        _spawn("#!/no/such/interpreter\n", tmp_path, contain)
    assert got.value.errno == errno.ENOENT
    with pytest.raises(OSError) as popen:
        subprocess.Popen([str(tmp_path / "s.sh")], cwd=tmp_path)
    assert popen.value.errno == got.value.errno


@pytest.mark.timeout(20)
def test_a_timeout_kills_the_whole_group_of_a_spawned_child(
    tmp_path: Path, contain: Containment
) -> None:
    clock = SystemClock()
    proc, token = _spawn("#!/bin/sh\nsleep 30 &\necho $!\nsleep 30\n", tmp_path, contain)
    assert isinstance(proc, Child)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    assert select.select([fd], [], [], 5)[0]
    member = os.pidfd_open(int(os.read(fd, 100)))  # readable once it exits
    pool = Pool(clock, 0.2)
    try:
        pool.add(Run(proc, clock.monotonic() + 0.5, Tail(None), Tail(1024), token=token))
        (run,) = list(pool.finished())
        assert run.why == "timeout"
        assert run.exit().signal_name == "SIGKILL"
        assert select.select([member], [], [], 3)[0], "a member of the timed-out group survived"
    finally:
        pool.abandon()
        os.close(member)


@pytest.mark.parametrize("pidfd", [True, False])
@pytest.mark.timeout(20)
def test_a_child_waited_for_too_short_is_still_running_then_reads_as_its_death(
    tmp_path: Path, contain: Containment, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    if not pidfd:  # an OS without pidfds: wait naps and polls
        monkeypatch.setattr(procstat, "open_pidfd", lambda pid: None)
    proc, _ = _spawn("#!/bin/sh\nexec sleep 30\n", tmp_path, contain)
    assert isinstance(proc, Child)
    with pytest.raises(TimeoutError):
        proc.wait(timeout=0.2)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL
    for f in (proc.stdout, proc.stderr):
        assert f is not None
        f.close()


@pytest.mark.timeout(20)
def test_a_pool_without_epoll_still_reads_every_run_to_its_end(
    tmp_path: Path, contain: Containment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(select, "epoll")  # an OS without epoll: the selectors wrapper serves
    clock = SystemClock()
    pool = Pool(clock, 0.2)
    try:
        for i in range(3):
            proc, token = _spawn(
                f"#!/bin/sh\necho out{i}\necho err{i} >&2\nexit {i}\n",
                tmp_path,
                contain,
                f"s{i}.sh",
            )
            pool.add(
                Run(proc, clock.monotonic() + 10, Tail(None), Tail(1024), label=str(i), token=token)
            )
        runs = sorted(pool.finished(), key=lambda r: r.label)
    finally:
        pool.abandon()
    assert [(r.out.data(), r.err.data(), r.returncode) for r in runs] == [
        (f"out{i}\n".encode(), f"err{i}\n".encode(), i) for i in range(3)
    ]
