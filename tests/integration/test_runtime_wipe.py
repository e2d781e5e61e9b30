"""A home's runtime state can be rebuilt: the runtime dir emptied under a live home (a tmp
cleaner, a hand `rm -rf`) strands nothing. Every worker still answers `shot`, `send` and
`kill`, a new start brings up no second session host for the home, `down` exits
0 with nothing of the home left running, and dead sockets and empty folders are swept.

The wipe is what a cleaner of /tmp removes for this home: the run's runtime dir (its
hosts' files) and the home's folder of control sockets (under /tmp/looop-<uid>, shared with
every other home of this user, which the test leaves alone)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.anchors import shown
from looop.home.sessionfiles import socket_file
from looop.home.where import runtime_dir
from looop.sandbox import boxhost
from looop.sessions.hostnames import home_key, host_socket
from looop.sessions.spawner import spawn, stop_host
from looop.sessions.state import get_session
from tests.helpers import clean_env, kill_sessions, process_ended, wait_until, wire
from tests.nonroot import nonroot as as_nonroot
from tests.procwatch import by_argv, describe, kill_all

pytestmark = [pytest.mark.timeout(180), pytest.mark.process]


def _looop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _procs() -> list[tuple[int, str, list[bytes], bytes]]:
    """(pid, comm, argv, environ) of every live process other than this one."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            out.append((int(entry), comm, argv, env))
    return out


def _hosts(data: Path, comm: str) -> list[int]:
    """Live preloaded hosts of this home named `comm` (`looop-host`), as ps
    shows them: by name, and by the data dir in their command line or environment."""
    mark = str(data).encode()
    return [
        pid
        for pid, name, argv, env in _procs()
        if name == comm and (mark in argv or f"LOOOP_DATA_DIR={data}\0".encode() in env)
    ]


def _home_left(data: Path, tag: str) -> list[int]:
    """Every process of this home still running: hosts, spares, supervisors, workers."""
    mark, dmark = str(data).encode(), f"LOOOP_DATA_DIR={data}\0".encode()
    return sorted(
        {
            pid
            for pid, name, argv, env in _procs()
            if name.startswith("looop") and (mark in b" ".join(argv) or dmark in env)
        }
        | set(by_argv(tag))
    )


def _wipe(data: Path) -> None:
    """What a tmp cleaner takes: the runtime dir, and the home's control sockets."""
    shutil.rmtree(runtime_dir(os.environ["LOOOP_RUNTIME_DIR"]))
    shutil.rmtree(os.path.dirname(socket_file(str(data), "x")))


@pytest.fixture
def home(ctx: Ctx) -> object:
    wire(ctx, [])
    tag = f"wiped{os.getpid()}x{os.urandom(3).hex()}"
    yield tag
    kill_sessions(ctx.paths.data)
    kill_all(by_argv(tag))
    kill_all(_home_left(ctx.paths.data, tag))


def _start(env: dict[str, str], wid: str, tag: str) -> None:
    echo = Path(env["HOME"]) / "echo.py"
    echo.write_text(
        "import sys\nfor line in sys.stdin:\n    print('got:' + line, end='', flush=True)\n"
    )
    cmd = f"{sys.executable} {echo} {tag}-{wid} # {{{{prompt_file}}}}"
    r = _looop(env, "worker", "start", wid, "work", "--command", cmd)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_wiped_runtime_dir_strands_no_worker_and_starts_no_second_host(
    ctx: Ctx, home: str
) -> None:
    data, tag = ctx.paths.data, home
    env = clean_env(data.parent, data)
    for wid in ("w1", "w2"):
        _start(env, wid, tag)
    assert len(_hosts(data, "looop-host")) == 1
    hosts_before = _hosts(data, "looop-host")

    _wipe(data)

    r = _looop(env, "send", "w1", "after the wipe")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: "got:after the wipe" in _looop(env, "shot", "w1").stdout, 20, "w1 echoing")
    r = _looop(env, "shot", "w2")
    assert r.returncode == 0, r.stdout + r.stderr
    _start(env, "w3", tag)  # a new start: served by the home's hosts, not by new ones
    r = _looop(env, "kill", "w2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not get_session(data, "w2").alive
    assert by_argv(f"{tag}-w2") == [], describe(by_argv(f"{tag}-w2"))
    # whatever the starts and the kill brought up has had its chance to come up by now
    _looop(env, "kill", "w3")
    wait_until(lambda: _looop(env, "shot", "w1").returncode == 0, 10, "w1 answering")
    got = sorted(_hosts(data, "looop-host"))
    assert got == sorted(hosts_before), f"hosts of the home: {describe(got)}"

    r = _looop(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: _home_left(data, tag) == [], 15, "nothing of the home running")


def test_a_second_wipe_and_a_sigkilled_supervisor_leave_no_dead_socket_or_empty_dir(
    ctx: Ctx, home: str
) -> None:
    data, tag = ctx.paths.data, home
    env = clean_env(data.parent, data)
    for wid in ("w1", "w2"):
        _start(env, wid, tag)
    _wipe(data)
    folder = os.path.dirname(socket_file(str(data), "w1"))
    # each supervisor binds its socket again, in a folder made again
    wait_until(lambda: os.path.exists(socket_file(str(data), "w1")), 10, "w1's socket back")
    wait_until(lambda: os.path.exists(socket_file(str(data), "w2")), 10, "w2's socket back")
    sup = get_session(data, "w1").supervisor_pid
    assert sup is not None
    os.kill(sup, signal.SIGKILL)  # leaves its socket behind, bound by nobody
    wait_until(lambda: process_ended(sup), 10, "the supervisor's death")
    assert os.path.exists(socket_file(str(data), "w1"))
    r = _looop(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(socket_file(str(data), "w1")), "a dead socket was left"
    assert not os.path.exists(folder), f"an empty folder was left: {os.listdir(folder)}"


SQUAT = """
import socket, sys
a = "\\0" + sys.argv[1][1:]
s = socket.socket(socket.AF_UNIX); s.bind(a); s.listen(8); s.settimeout(30)
print("listening", flush=True)
got = b""
try:
    while True:
        c, _ = s.accept(); c.settimeout(5)
        try:
            while chunk := c.recv(65536):
                got += chunk
        except OSError:
            pass
        c.close()
        open(sys.argv[2], "wb").write(got)
except OSError:
    pass
"""


def test_another_user_on_a_hosts_name_gets_no_environment_and_stops_no_start(
    ctx: Ctx, tmp_path: Path
) -> None:
    """Abstract names have no permissions: another local user can take a host's name first.
    The caller checks who listens before it says a word, and starts its supervisor itself."""
    with as_nonroot() as mallory:
        base = os.environ["LOOOP_RUNTIME_DIR"]
        name = host_socket(home_key(str(ctx.paths.data)), base)
        heard = mallory.home / "heard"
        squat = subprocess.Popen(
            mallory.argv(mallory.python, "-c", SQUAT, shown(name), str(heard)),
            stdout=subprocess.PIPE,
            env=mallory.env,
        )
        try:
            assert squat.stdout is not None and squat.stdout.readline() == b"listening\n"
            env = {**clean_env(tmp_path, ctx.paths.data), "SECRET": "not-for-mallory"}
            spawn(ctx.paths.data, "s1", ["sleep", "60"], cwd=tmp_path, env=env)
            assert get_session(ctx.paths.data, "s1").alive
            stop_host(base, str(ctx.paths.data))  # `down`'s stop says nothing to it either
            wait_until(heard.exists, 10, "the squatter's connections over")
            assert b"SECRET" not in heard.read_bytes() and heard.read_bytes() == b""
        finally:
            squat.kill()
            squat.wait(10)
            kill_sessions(ctx.paths.data)


def test_rm_rf_of_a_users_whole_runtime_dir_strands_nothing(tmp_path: Path) -> None:
    """The report's own steps, as a user who is not root (whose /tmp/looop-<uid> no other
    test shares): two workers, `rm -rf /tmp/looop-<uid>`, then every verb, a new start and
    `down`."""
    with as_nonroot() as who:
        who.env.pop("LOOOP_RUNTIME_DIR")  # the default: /tmp/looop-<uid> holds it all
        tag = f"rmrf{os.getpid()}x{os.urandom(3).hex()}"
        echo = who.home / "echo.py"
        echo.write_text(
            "import sys\nfor line in sys.stdin:\n    print('got:' + line, end='', flush=True)\n"
        )

        def start(wid: str) -> None:
            cmd = f"{who.python} {echo} {tag}-{wid} # {{{{prompt_file}}}}"
            r = who.looop("worker", "start", wid, "work", "--command", cmd)
            assert r.returncode == 0, r.stdout + r.stderr

        try:
            start("w1")
            start("w2")
            before = sorted(_hosts(who.data, "looop-host"))
            assert len(before) == 1, describe(before)
            shutil.rmtree(f"/tmp/looop-{who.uid}")
            r = who.looop("send", "w1", "after rm")
            assert r.returncode == 0, r.stdout + r.stderr
            shot = lambda: who.looop("shot", "w1").stdout  # noqa: E731
            wait_until(lambda: "got:after rm" in shot(), 20, "w1 echoing after the wipe")
            start("w3")
            r = who.looop("kill", "w2")
            assert r.returncode == 0, r.stdout + r.stderr
            assert by_argv(f"{tag}-w2") == [], describe(by_argv(f"{tag}-w2"))
            after = sorted(_hosts(who.data, "looop-host"))
            assert after == before, f"hosts of the home: {describe(after)}"
            r = who.looop("down")
            assert r.returncode == 0, r.stdout + r.stderr
            wait_until(lambda: _home_left(who.data, tag) == [], 15, "nothing of the home left")
        finally:
            kill_all(by_argv(tag))


def test_a_starting_host_sweeps_what_removed_homes_left_long_ago(ctx: Ctx, tmp_path: Path) -> None:
    """Data dirs removed without a `down` (a test run's, an `rm -rf` of a home) leave their
    socket folders: the next host to start removes the dead sockets and empty folders that
    are old, and leaves a fresh one (a supervisor of an older build may be binding there)."""
    top = Path(os.path.dirname(os.path.dirname(socket_file("/", "x"))))
    top.mkdir(mode=0o700, exist_ok=True)
    long_ago = 1_000_000_000.0  # 2001
    old_dead, old_empty, fresh = (top / os.urandom(8).hex() for _ in range(3))
    for folder in (old_dead, fresh):
        folder.mkdir(mode=0o700)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(folder / "0123456789abcdef.sock"))  # closed: refused, a dead one's
    old_empty.mkdir(mode=0o700)
    for p in (old_dead / "0123456789abcdef.sock", old_dead, old_empty):
        os.utime(p, (long_ago, long_ago))
    try:
        env = clean_env(tmp_path, ctx.paths.data)
        spawn(ctx.paths.data, "s1", ["sleep", "60"], cwd=tmp_path, env=env)  # a host starts
        assert not old_dead.exists() and not old_empty.exists()
        assert (fresh / "0123456789abcdef.sock").exists()
    finally:
        kill_sessions(ctx.paths.data)
        shutil.rmtree(fresh, ignore_errors=True)


def test_down_stops_a_sandbox_host_whose_socket_was_wiped(tmp_path: Path) -> None:
    """The home's sandbox host (node, sandbox/boxhost.mjs) is asked to stop on its socket; with
    the runtime dir emptied under it, it is found by its command line instead. Stood in for
    by a process with its command line: what is tested is the finding, not node."""
    base, data, lib = os.environ["LOOOP_RUNTIME_DIR"], str(tmp_path / "data"), "/x/index.js"
    sock = boxhost.socket_path(base, data, lib)
    assert not os.path.exists(sock)  # never made, or wiped: nothing answers there
    wait = "import time; time.sleep(120)"
    host = subprocess.Popen([sys.executable, "-c", wait, boxhost.SCRIPT, lib, sock, data, "30"])
    other = subprocess.Popen([sys.executable, "-c", wait, boxhost.SCRIPT, lib, sock + "x", data])
    try:
        assert boxhost.stop(base, data, lib)
        assert host.wait(10) == -signal.SIGTERM
        assert other.poll() is None  # another home's (another socket) is not this one's
    finally:
        for p in (host, other):
            p.kill()
            p.wait(10)
