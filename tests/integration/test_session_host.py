"""The session host: supervisors forked from one preloaded parent, each still on its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from looop.home.anchors import shown
from looop.home.hashing import fnv1a_64
from looop.home.where import runtime_dir
from looop.sessions import hostnames, spawner
from looop.sessions.client import expect, kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session, list_sessions
from tests.clocks import FixedClock
from tests.helpers import Cli, host_pid, listens, process_ended, until, wait_until

pytestmark = pytest.mark.timeout(60)


RUN_BASE = os.environ["LOOOP_RUNTIME_DIR"]  # this run's hosts (tests/conftest.py)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "data"
    r.mkdir()
    yield r
    for s in list_sessions(r):
        if s.alive and s.supervisor_pid:
            with contextlib.suppress(OSError):
                kill(r, s.id)


@pytest.fixture
def short() -> Iterator[Path]:
    """A host's base dir whose socket paths stay short under any pytest basetemp (xdist adds
    a level): a unix socket's path has a hard limit of about 100 bytes."""
    d = Path(tempfile.mkdtemp(prefix="h-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LOOOP_RUNTIME_DIR": RUN_BASE,
    }


def _supervisor(root: Path, sid: str) -> psutil.Process:
    pid = get_session(root, sid).supervisor_pid
    assert pid
    return psutil.Process(pid)


def _host_pid(home: Path) -> int | None:
    return host_pid(RUN_BASE, str(home))


def test_an_edit_to_any_room_the_host_loads_is_a_new_build() -> None:
    """The host's key covers every room it imports: a client built from edited code never
    talks to a host still running the old."""
    probe = (
        "import sys, looop.sessions.host\n"
        "print(' '.join(sorted({n.split('.')[1] for n in sys.modules"
        " if n.startswith('looop.') and n.count('.') >= 1})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(out.stdout.split())
    assert loaded and loaded <= set(hostnames.HOST_ROOMS), loaded


def test_a_session_is_forked_by_the_host_yet_stands_alone(root: Path, env: dict[str, str]) -> None:
    spawn(root, "h1", ["sleep", "60"], cwd=root, env=env)
    sup = _supervisor(root, "h1")
    hpid = _host_pid(root)
    assert hpid is not None, "no session host runs after a spawn"
    # forked from the host (its command line), but not its child: adopted like any daemon
    forked_by = shown(hostnames.host_socket(hostnames.home_key(str(root)), RUN_BASE))
    assert sup.cmdline()[0] == f"looop: supervisor h1 (host {forked_by})"
    assert sup.ppid() != hpid
    assert sup.name() == "looop:h1"  # what ps and top show
    assert psutil.Process(hpid).name() == "looop-host"
    assert sup.pid != hpid
    # the host dying takes no session with it
    os.kill(hpid, signal.SIGKILL)
    wait_until(lambda: process_ended(hpid))
    assert get_session(root, "h1").alive
    kill(root, "h1")
    assert not get_session(root, "h1").alive
    # and the next spawn brings a new host up
    spawn(root, "h2", ["sleep", "60"], cwd=root, env=env)
    new = _host_pid(root)
    assert new is not None and new != hpid
    kill(root, "h2")


@pytest.mark.timeout(180)
def test_the_host_keeps_nothing_of_the_sessions_it_runs(root: Path, env: dict[str, str]) -> None:
    """What the host builds for a session after its heap was frozen (the request, the
    prepared supervisor) is let go once forked. Kept while the session lived, every
    supervisor forked later inherited it and copied its pages on its own collections: a
    worker cost more the more workers were started before it, and the host grew ~6 kB per
    live session (252 kB over these 40)."""
    for i in range(5):  # the host up, its first requests' lazily built state made
        spawn(root, f"warm{i}", ["sleep", "120"], cwd=root, env=env)
    hpid = _host_pid(root)
    assert hpid is not None
    before = psutil.Process(hpid).memory_info().rss
    for i in range(40):  # all live: nothing of theirs may stay in the host meanwhile
        spawn(root, f"s{i}", ["sleep", "120"], cwd=root, env=env)
    grown = psutil.Process(hpid).memory_info().rss - before
    assert all(get_session(root, f"s{i}").alive for i in range(40))
    assert grown <= 128 * 1024, f"the host grew {grown // 1024} kB over 40 live sessions"


def test_the_session_gets_the_callers_env_cwd_and_umask_not_the_hosts(
    root: Path, env: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    spawn(root, "first", ["true"], cwd=root, env=dict(env, ONLY_FIRST="1"))  # may start the host
    work = tmp_path / "work"
    work.mkdir()
    script = 'echo "cwd=$(pwd) mark=$MARK first=${ONLY_FIRST:-none} umask=$(umask)"; sleep 30'
    old = os.umask(0o027)
    try:
        spawn(root, "envy", ["sh", "-c", script], cwd=work, env=dict(env, MARK="m-42"))
    finally:
        os.umask(old)
    code, line, _ = expect(root, "envy", r"cwd=\S+ mark=\S+ first=\S+ umask=\d+", clock=clock)
    assert code == 0, line
    assert line == f"cwd={work} mark=m-42 first=none umask=0027"


def test_the_session_gets_the_callers_open_file_limit(
    root: Path, env: dict[str, str], clock: FixedClock
) -> None:
    import resource

    spawn(root, "warm", ["true"], cwd=root, env=env)  # the host already runs with ours
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 512) - 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        spawn(root, "lim", ["sh", "-c", "echo nofile=$(ulimit -n); sleep 30"], cwd=root, env=env)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    code, line, _ = expect(root, "lim", r"nofile=\d+", clock=clock)
    assert code == 0
    assert line == f"nofile={lowered}"


def test_a_missing_cwd_is_one_clear_error(root: Path, env: dict[str, str]) -> None:
    want = r"cannot start session `gone` in /nonexistent/x: No such"
    with pytest.raises(SessionError, match=want):
        spawn(root, "gone", ["true"], cwd=Path("/nonexistent/x"), env=env)
    # nor is a cgroup left for it: nothing would ever end one made for a start that failed
    name = f"{fnv1a_64(os.path.abspath(root).encode())}-gone"
    # os.walk, not a ** glob: other tests' groups come and go during the walk, and one gone
    # between its listing and its own scan crashed the glob (os.walk passes over it)
    left = [d for d, subs, _ in os.walk("/sys/fs/cgroup") if d.endswith("/looop") and name in subs]
    assert left == []


def test_no_host_when_its_idle_is_zero(root: Path, env: dict[str, str]) -> None:
    spawn(root, "solo", ["sleep", "60"], cwd=root, env=env, host_idle_s=0)
    assert _supervisor(root, "solo").cmdline()[0] == "looop: supervisor solo"  # no host named
    kill(root, "solo")


def test_many_first_spawns_at_once_share_one_host(short: Path, env: dict[str, str]) -> None:
    base = short / "b"
    base.mkdir()
    key = "test" + os.urandom(4).hex()
    host_env = dict(env, PYTHONPATH=os.pathsep.join(sys.path))
    import threading

    def start() -> None:
        spawner._start_host(key, 5.0, host_env, str(base), str(short))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)

    def hosts() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            argv = p.info["cmdline"] or []
            # by its argv while it starts, by its title once it serves (core/proctitle.py)
            ours = key in argv or argv[:1] == [f"looop: session host {short}"]
            if ours and p.info["status"] != "zombie":
                found.append(p)
        return found

    try:
        # the losers of the lock race say so and exit; one host is left serving
        assert until(lambda: len(hosts()) == 1, 20), [p.pid for p in hosts()]
        assert spawner.stop_host(str(base), key=key)
        wait_until(lambda: not listens(hostnames.host_socket(key, str(base))), what="host gone")
    finally:
        for p in hosts():
            with contextlib.suppress(psutil.Error):
                p.kill()


def test_an_idle_host_exits_and_frees_its_name(short: Path, env: dict[str, str]) -> None:
    base = str(short)
    key = "idle" + os.urandom(4).hex()
    spawner._start_host(key, 0.3, dict(env, PYTHONPATH=os.pathsep.join(sys.path)), base, base)
    pid = host_pid(base, key=key)  # one look: each connection is a use
    assert pid is not None
    wait_until(lambda: process_ended(pid), timeout=20, what="idle host exit")
    assert not listens(hostnames.host_socket(key, base))


def test_hostile_requests_leave_the_host_serving(short: Path, env: dict[str, str]) -> None:
    base = str(short)
    key = "bad" + os.urandom(4).hex()
    spawner._start_host(key, 20, dict(env, PYTHONPATH=os.pathsep.join(sys.path)), base, base)
    path = hostnames.host_socket(key, base)

    def ask(body: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(body)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := s.recv(4096):
                out += chunk
            return out

    try:
        assert ask(b"not json\n") == b""
        assert ask(b"[1, 2]\n") == b""
        assert ask(b'{"args": "x", "cwd": 3, "env": {}}\n').startswith(b"err ")
        assert ask(json.dumps({"args": ["a"], "cwd": "/", "env": {"K": 1}}).encode() + b"\n") != b""
        assert ask(b"{" + b" " * 100) == b""  # no newline, then EOF
        assert ask(b"[" * 200_000 + b"\n") == b""  # nesting deeper than any parser recursion
        assert ask(b"\xff\xfe{}\n") == b""
        bad_env = {"args": ["--", "true"], "cwd": "/", "env": {"A=B": "1"}}
        assert ask(json.dumps(bad_env).encode() + b"\n").startswith(b"err ")
        # still answering: a stop request gets its reply
        assert spawner.stop_host(base, key=key)
        assert until(lambda: not listens(path), 20)
    finally:
        spawner.stop_host(base, key=key)


def test_a_stale_socket_file_is_no_obstacle(short: Path, env: dict[str, str]) -> None:
    base = str(short)
    key = "stale" + os.urandom(4).hex()
    hdir = runtime_dir(base)
    os.makedirs(hdir, mode=0o700, exist_ok=True)
    path = os.path.join(hdir, f"host-{key}.sock")  # where an older build's host listened
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # bound, never listening: a crashed host's leftover
    spawner._start_host(key, 20, dict(env, PYTHONPATH=os.pathsep.join(sys.path)), base, base)
    try:
        assert spawner.stop_host(base, key=key)
    finally:
        spawner.stop_host(base, key=key)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a dir to another user needs root")
def test_no_env_goes_to_a_socket_dir_another_user_owns(tmp_path: Path) -> None:
    hdir = runtime_dir(str(tmp_path))
    os.mkdir(hdir, 0o700)
    os.chown(hdir, 65534, 65534)
    with pytest.raises(SessionError, match="belongs to another user"):
        spawner.host_request(
            ["--", "true"],
            cwd="/",
            env={"SECRET": "s"},
            err_path="/dev/null",
            home=str(tmp_path),
            base=str(tmp_path),
        )


def test_a_host_key_names_the_interpreter() -> None:
    assert hostnames.host_key("/usr/bin/python3") != hostnames.host_key("/opt/other/python3")
    assert hostnames.host_key() == hostnames.host_key()


def test_the_worker_exits_normally_through_the_host(root: Path, env: dict[str, str]) -> None:
    spawn(root, "ends", ["sh", "-c", "exit 7"], cwd=root, env=env)
    assert wait(root, "ends", 20, FixedClock()) == 7


def _agent_chain(data: Path, wid: str) -> list[str]:
    """The programs between a worker's supervisor and the bottom of its process tree."""
    sup = _supervisor(data, wid)
    names = []
    procs = sup.children()
    while procs:
        names.append(procs[0].name())
        procs = procs[0].children()
    return names


@pytest.mark.parametrize(
    ("command", "program"),
    [
        ("tail -f {{prompt_file}}", "tail"),  # one plain command: its own argv
        ("sleep 600 # {{prompt_file}}", "sleep"),  # bash execs it
        ('sleep "$(echo 600)" # {{prompt_file}}', "sleep"),
    ],
)
def test_a_worker_leaves_no_shell_behind(cli: Cli, data: Path, command: str, program: str) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    code, _, err = cli("worker", "start", "w1", "--command", command, "go")
    assert code == 0, err
    try:
        # the supervisor's child is the agent itself: no `bash -c` wrapper holds memory
        wait_until(lambda: _agent_chain(data, "w1") == [program], what="bash exec'd away")
    finally:
        cli("kill", "w1")


def test_a_worker_whose_program_is_missing_still_fails_its_start(cli: Cli) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    code, _, err = cli(
        "worker", "start", "w2", "--command", 'nosuchprog "$(echo x)" # {{prompt_file}}', "go"
    )
    assert code == 1
    assert "exited at once with code 127" in err and "nosuchprog" in err


def test_down_leaves_no_session_host_behind(cli: Cli, data: Path) -> None:
    assert cli("init", "--no-sandbox")[0] == 0
    assert cli("worker", "start", "w3", "--command", "sleep 600 # {{prompt_file}}", "go")[0] == 0
    assert _host_pid(data) is not None
    code, _, err = cli("down")
    assert code == 0, err
    wait_until(lambda: _host_pid(data) is None, what="the session host to exit")
    assert not listens(hostnames.host_socket(hostnames.home_key(str(data)), RUN_BASE))


def test_a_spawn_right_after_the_host_was_told_to_stop_still_starts(
    root: Path, env: dict[str, str]
) -> None:
    """The old host may still hold its socket for a moment after a stop: a request it never
    read is reset, and the spawn starts a new host instead of failing."""
    for i in range(6):
        spawner.stop_host(RUN_BASE, str(root))
        spawn(root, f"r{i}", ["sleep", "60"], cwd=root, env=env)
        assert get_session(root, f"r{i}").alive
        kill(root, f"r{i}")


def test_a_caller_in_another_mount_namespace_gets_a_supervisor_of_its_own(
    root: Path, env: dict[str, str]
) -> None:
    spawn(root, "warm", ["true"], cwd=root, env=env)  # a host runs (started out here)
    assert _host_pid(root) is not None
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here")
    code = (
        "import sys; from pathlib import Path; from looop.sessions.spawner import spawn; "
        "spawn(Path(sys.argv[1]), 'inside', ['sleep', '60'], cwd=Path(sys.argv[1]), "
        "env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8', 'LOOOP_RUNTIME_DIR': sys.argv[2]})"
    )
    done = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", code, str(root), RUN_BASE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sup = _supervisor(root, "inside")
    # not forked by the host (it sees another filesystem): started within the caller's limits
    assert sup.cmdline()[0] == "looop: supervisor inside"  # no host named in its title
    assert get_session(root, "inside").alive
    kill(root, "inside")
