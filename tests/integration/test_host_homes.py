"""Session hosts belong to one home (data dir): their own env, never a worker's descendant."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from looop.home.anchors import anchor, hold, shown
from looop.home.where import runtime_dir
from looop.sessions import hostnames, spawner
from looop.sessions.client import kill
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session, list_sessions
from tests.helpers import (
    Cli,
    host_pid,
    listens,
    process_ended,
    stop_hosts,
    stop_sessions,
    until,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

RUN_BASE = os.environ["LOOOP_RUNTIME_DIR"]  # this run's hosts (tests/conftest.py)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LOOOP_RUNTIME_DIR": RUN_BASE,
        "PYTHONPATH": os.pathsep.join(sys.path),
        **extra,
    }


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    yield a, b
    for home in (a, b):
        for s in list_sessions(home):
            if s.alive:
                with contextlib.suppress(Exception):
                    kill(home, s.id)
        spawner.stop_host(RUN_BASE, str(home))


def _supervisor(home: Path, sid: str) -> psutil.Process:
    pid = get_session(home, sid).supervisor_pid
    assert pid
    return psutil.Process(pid)


def _forked_by(home: Path) -> str:
    """What the title of a supervisor forked by the home's host says of it (sessions/host.py)."""
    return f"(host {shown(hostnames.host_socket(hostnames.home_key(str(home)), RUN_BASE))})"


def _ancestors(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).parents()]


def _host(home: Path) -> int:
    pid = host_pid(RUN_BASE, str(home))
    assert pid is not None, f"no session host serves {home}"
    return pid


def test_two_homes_get_two_hosts_and_no_env_crosses(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = homes
    spawn(a, "wa", ["sleep", "60"], cwd=a, env=_env(tmp_path, ONLY_A="secret-of-a"))
    spawn(b, "wb", ["sh", "-c", "env > seen.txt; exec sleep 60"], cwd=b, env=_env(tmp_path))
    ha, hb = _host(a), _host(b)
    assert ha != hb
    assert psutil.Process(ha).environ().get("ONLY_A") == "secret-of-a"  # A's host: A's env
    for proc in (psutil.Process(hb), _supervisor(b, "wb")):
        assert "ONLY_A" not in proc.environ(), proc.cmdline()
    wait_until(lambda: (b / "seen.txt").exists() and b"LANG=" in (b / "seen.txt").read_bytes())
    assert b"ONLY_A" not in (b / "seen.txt").read_bytes()
    # B's supervisor was forked by B's host, A's by A's
    assert _forked_by(b) in " ".join(_supervisor(b, "wb").cmdline())
    assert _forked_by(a) in " ".join(_supervisor(a, "wa").cmdline())


def _ask(path: str, req: dict[str, object]) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        return s.recv(4096)


@pytest.mark.parametrize("how", ["other dir", "no root", "root through a symlink elsewhere"])
def test_a_host_refuses_a_supervisor_for_another_home(
    homes: tuple[Path, Path], tmp_path: Path, how: str
) -> None:
    a, b = homes
    spawn(a, "wa", ["sleep", "60"], cwd=a, env=_env(tmp_path))
    link = tmp_path / "link"
    link.symlink_to(b)
    root = {"other dir": [str(b)], "no root": [], "root through a symlink elsewhere": [str(link)]}
    args = ["--id", "x1", *(["--root", *root[how]] if root[how] else []), "--", "true"]
    sock = hostnames.host_socket(hostnames.home_key(str(a)), RUN_BASE)
    reply = _ask(sock, {"args": args, "cwd": "/", "env": {"PATH": "/bin"}, "err": None})
    assert reply.startswith(b"unavailable"), reply
    assert not (b / "sessions" / "x1").exists()
    # through the front door the caller then gets a supervisor of its own home's making
    spawn(b, "x2", ["sleep", "60"], cwd=b, env=_env(tmp_path))
    assert get_session(b, "x2").alive


def test_the_same_dir_by_another_name_is_the_same_home(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = homes
    link = tmp_path / "alias"
    link.symlink_to(a)
    spawn(a, "w1", ["sleep", "60"], cwd=a, env=_env(tmp_path))
    spawn(link, "w2", ["sleep", "60"], cwd=a, env=_env(tmp_path))
    assert host_pid(RUN_BASE, str(link)) == _host(a)
    assert _forked_by(a) in " ".join(_supervisor(a, "w2").cmdline())


# A worker that starts a session in another home from inside its PTY, once told to (the
# spawn's env and the import path come on the command line: `env -i` may have cleared them).
INSIDE = (
    "import json, sys, time; sys.path[:0] = json.loads(sys.argv[3])\n"
    "from pathlib import Path; from looop.sessions.spawner import spawn\n"
    "home, go = Path(sys.argv[1]), Path(sys.argv[2])\n"
    "while not go.exists(): time.sleep(0.02)\n"
    "spawn(home, 'b1', ['sleep', '120'], cwd=home, env=json.loads(sys.argv[4]))\n"
    "(home / 'started').write_text('ok')\n"
    "time.sleep(600)\n"
)
# How the worker runs it: as its own command, detached from the worker (a new session whose
# parent exits: the subreaper adopts it), and with its environment cleared.
WAYS = {
    "as the worker": [],
    "detached with setsid -f": ["setsid", "-f"],
    "env cleared": ["env", "-i"],
}


def _inner_worker(
    a: Path, b: Path, tmp_path: Path, way: str = "as the worker", **kw: float
) -> tuple[psutil.Process, Path]:
    go = tmp_path / "go"
    inner = json.dumps(_env(tmp_path))
    argv = [*WAYS[way], sys.executable, "-c", INSIDE, str(b), str(go), json.dumps(sys.path)]
    if way == "detached with setsid -f":  # the worker itself stays, as a waiting shell
        argv = ["sh", "-c", 'setsid -f "$@"; exec sleep 600', "sh", *argv[2:], inner]
    else:
        argv.append(inner)
    spawn(a, "wa", argv, cwd=a, env=_env(tmp_path), **kw)
    return _supervisor(a, "wa"), go


@pytest.mark.parametrize("way", list(WAYS))
def test_a_host_started_inside_a_worker_hangs_off_init_and_outlives_it(
    homes: tuple[Path, Path], tmp_path: Path, way: str
) -> None:
    a, b = homes
    sup, go = _inner_worker(a, b, tmp_path, way)
    ha = _host(a)
    go.touch()
    wait_until(lambda: (b / "started").exists(), timeout=30, what="the inner spawn")
    hb = _host(b)
    assert hb != ha
    assert sup.pid not in _ancestors(hb)  # its supervisor (a subreaper) did not adopt it
    assert sup.pid not in _ancestors(_supervisor(b, "b1").pid)
    assert _forked_by(b) in " ".join(_supervisor(b, "b1").cmdline())
    # the worker that started it goes; B's host and its session stay, and it serves on
    kill(a, "wa")
    wait_until(lambda: process_ended(sup.pid), what="the worker's supervisor to end")
    assert get_session(b, "b1").alive
    spawn(b, "b2", ["sleep", "60"], cwd=b, env=_env(tmp_path))
    assert _host(b) == hb
    assert _forked_by(b) in " ".join(_supervisor(b, "b2").cmdline())


def test_inside_a_worker_with_no_host_above_it_no_host_is_started(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    """The worker's supervisor started on its own (no host to ask): a host started there
    would be its descendant, so the inner start goes without one."""
    a, b = homes
    sup, go = _inner_worker(a, b, tmp_path, host_idle_s=0)
    go.touch()
    wait_until(lambda: (b / "started").exists(), timeout=30, what="the inner spawn")
    assert get_session(b, "b1").alive
    assert host_pid(RUN_BASE, str(b)) is None
    under = [p for p in sup.children(recursive=True) if p.name() == "looop-host"]
    assert under == []


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_starting_host_sweeps_what_dead_hosts_left(tmp_path: Path) -> None:
    """An empty error file of a host that is gone, a dead host's rehearsal."""
    # short: a unix socket's path must stay under ~100 bytes (xdist deepens tmp_path)
    base = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    hdir = Path(runtime_dir(str(base)))
    hdir.mkdir(mode=0o700)
    dead = _dead_pid()
    (hdir / "host-0ld0ld0ld0ld0ld0.err").write_text("")
    (hdir / "host-0ld0ld0ld0ld.err").write_text("Traceback: why it died\n")
    (hdir / f"rehearsal-{dead}").mkdir()
    (hdir / f"rehearsal-{dead}" / "sessions").mkdir()
    # a live host's (we hold its guard) and names that are not a host's stay
    (hdir / "host-live.err").write_text("")
    held = hold(anchor(str(base), "host-live.lock"))
    assert held is not None
    (hdir / "0123456789abcdef").mkdir()  # a data dir's session sockets live in such a dir
    try:
        home = tmp_path / "data"
        home.mkdir()
        env = dict(_env(tmp_path), LOOOP_RUNTIME_DIR=str(base))
        spawn(home, "s1", ["sleep", "60"], cwd=home, env=env)
        left = sorted(p.name for p in hdir.iterdir())
        key = hostnames.home_key(str(home))
        assert left == sorted(
            [
                "0123456789abcdef",
                "host-0ld0ld0ld0ld.err",  # it says why that host died: kept
                "host-live.err",
                f"host-{key}.err",  # its own: it listens on an abstract name, no file
            ]
        )
    finally:
        os.close(held)
        stop_sessions(tmp_path / "data")
        stop_hosts(str(base))
        shutil.rmtree(base, ignore_errors=True)


def test_down_of_one_home_leaves_the_others_host_and_workers_alone(
    cli: Cli, data: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    try:
        spawn(other, "keep", ["sleep", "60"], cwd=other, env=_env(tmp_path))
        hb = _host(other)
        assert cli("init")[0] == 0
        assert (
            cli("worker", "start", "w1", "--command", "sleep 600 # {{prompt_file}}", "go")[0] == 0
        )
        ha = _host(data)
        assert ha != hb
        code, _, err = cli("down")
        assert code == 0, err
        wait_until(lambda: process_ended(ha), what="this home's host to exit")
        assert host_pid(RUN_BASE, str(other)) == hb
        assert get_session(other, "keep").alive
        spawn(other, "more", ["sleep", "60"], cwd=other, env=_env(tmp_path))
        assert _host(other) == hb
    finally:
        for sid in ("keep", "more"):
            with contextlib.suppress(Exception):
                kill(other, sid)
        spawner.stop_host(RUN_BASE, str(other))


def test_a_host_lives_while_its_home_has_a_live_session_then_goes(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = homes
    spawn(a, "w", ["sleep", "60"], cwd=a, env=_env(tmp_path), host_idle_s=0.3)
    ha = _host(a)
    # many times its idle time unused: with a session alive at home it stays
    assert not until(lambda: process_ended(ha), 3.0)
    kill(a, "w")
    assert until(lambda: process_ended(ha), 15)
    assert not listens(hostnames.host_socket(hostnames.home_key(str(a)), RUN_BASE))


@pytest.mark.parametrize(
    "launch",
    [
        ["/bin/sh", "-c", "touch {mark}"],  # anything but a host
        [sys.executable, "-m", "looop.sessions.supervisor", "--id", "x"],
        [sys.executable, "-m", "looop.sessions.host", "--ready-fd", "0"],  # the fd is ours to give
        ["python3", "-m", "looop.sessions.host"],  # not an absolute interpreter
    ],
)
def test_a_host_launches_nothing_but_a_host(
    homes: tuple[Path, Path], tmp_path: Path, launch: list[str]
) -> None:
    a, _ = homes
    spawn(a, "wa", ["sleep", "60"], cwd=a, env=_env(tmp_path))
    mark = tmp_path / "ran"
    cmd = [part.format(mark=mark) for part in launch]
    pad = hostnames.host_socket(hostnames.home_key(str(a)), RUN_BASE)
    req = {"launch": cmd, "env": {"PATH": "/bin"}, "err": str(tmp_path / "e")}
    assert _ask(pad, req).startswith(b"err "), cmd
    assert not mark.exists()


def test_a_caller_in_another_mount_namespace_gets_no_launch(
    homes: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = homes
    spawn(a, "wa", ["sleep", "60"], cwd=a, env=_env(tmp_path))
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -m is not permitted here")
    pad = hostnames.host_socket(hostnames.home_key(str(a)), RUN_BASE)
    key = hostnames.home_key(str(b))
    cmd = [sys.executable, "-m", "looop.sessions.host", "--key", key, "--base", RUN_BASE]
    req = {"launch": [*cmd, "--home", str(b)], "env": _env(tmp_path), "err": str(tmp_path / "e")}
    code = (
        "import json, socket, sys\n"
        "a = sys.argv[1]; a = '\\0' + a[1:] if a.startswith('@') else a\n"  # abstract: @name
        "s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(a)\n"
        "s.sendall(sys.argv[2].encode() + b'\\n'); print(s.recv(4096).decode())\n"
    )
    done = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", code, shown(pad), json.dumps(req)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.startswith("unavailable"), done
    assert host_pid(RUN_BASE, str(b)) is None
