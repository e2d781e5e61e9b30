"""The session host's client side: a supervisor start handed to a home's host (`request`), a
host started, found, asked to launch another, or asked to stop. The host process itself is
`looop.sessions.host` and never imports this module (it starts processes: subprocess and
pathlib load here); the names both sides share are `hostnames`.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from looop.home.anchors import shown
from looop.home.jsonio import dumps
from looop.home.peers import caller_limits, connect, peer
from looop.home.sessionfiles import ensure_private_dir
from looop.home.where import runtime_dir
from looop.sessions.hostnames import HOST_IDLE_S, home_key, host_socket, options

if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping, Sequence

START_TIMEOUT_S = 10.0


class HostUnavailable(Exception):
    """No host could take the request before anything was started: spawn directly."""


# -- client side ---------------------------------------------------------------------------


def request(
    args: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    err_path: str,
    home: str,
    idle_s: float = HOST_IDLE_S,
    base: str = "/tmp",
) -> socket.socket:
    """Hand a supervisor start to the host of the data dir `home` (starting one when none
    answers); returns the connection the supervisor's readiness line will arrive on.
    HostUnavailable when no host took the request (nothing was started)."""
    key = home_key(home)
    ensure_private_dir(Path(runtime_dir(base)))  # its error file goes there: ours, 0700
    path = host_socket(key, base)
    sock = connect(path)
    if sock is None:
        _start_host(key, idle_s, env, base, home)
        sock = connect(path)
        if sock is None:
            raise HostUnavailable(f"the session host did not answer on {shown(path)}")
    if peer(sock)[1] != os.geteuid():
        sock.close()
        raise HostUnavailable(f"{shown(path)} is served by another user")
    umask = os.umask(0o022)
    os.umask(umask)
    body = dumps(
        {
            "args": list(args),
            "cwd": cwd,
            "env": dict(env),
            "umask": umask,
            "err": err_path,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "limits": caller_limits(),
        }
    ).encode()
    try:
        sock.sendall(body + b"\n")
    except OSError as e:
        sock.close()
        raise HostUnavailable(f"the session host hung up: {e}") from e
    return sock


def _start_host(key: str, idle_s: float, env: Mapping[str, str], base: str, home: str) -> None:
    """Start the host of `home` and wait until it listens (or says another one already
    does); never under a session's supervisor (see `start_host_process`)."""
    cmd = [sys.executable, "-m", "looop.sessions.host", "--key", key, "--base", base]
    cmd += ["--home", os.path.abspath(home), "--idle-s", f"{idle_s:g}"]
    if not start_host_process(cmd, env, os.path.join(runtime_dir(base), f"host-{key}.err")):
        raise HostUnavailable("no session host can start outside this worker's supervisor")


def start_host_process(cmd: list[str], env: Mapping[str, str], err_path: str) -> bool:
    """Start a preloaded host (`cmd` gets `--ready-fd N`) detached, its stderr to `err_path`,
    and wait until it said ready. Under a session's supervisor (a subreaper) the host that
    forked that supervisor starts it, so it too hangs off init; False when there is none (or
    it refused): start nothing, do without a host. HostUnavailable when it could not start."""
    inside, pad = enclosing_host()
    if inside:
        return pad is not None and _launch_via(pad, cmd, env, err_path)
    ensure_private_dir(Path(os.path.dirname(err_path)))
    try:
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        err = os.open(os.devnull, os.O_WRONLY)
    try:
        start_ready(cmd, [], err=err, cwd="/", env=env, timeout=START_TIMEOUT_S)
    except OSError as e:
        raise HostUnavailable(f"cannot start the session host: {e}") from e
    finally:
        os.close(err)
    return True


def enclosing_host() -> tuple[bool, str | None]:
    """Whether this process runs under a session's supervisor, and if so the socket of the
    host that forked that supervisor (None: it was started on its own, or no host owns it).
    Read from the parent chain in /proc (an environment can be cleared; a parent cannot)."""
    pid = os.getppid()
    for _ in range(128):
        if pid <= 1:
            return False, None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile, or no /proc: nothing known to sit above us
            return False, None
        close = stat.rfind(b")")
        comm = stat[stat.find(b"(") + 1 : close]
        if comm.startswith(b"looop:") and argv[0].startswith(b"looop: supervisor "):
            return True, _titled_host(argv[0])  # its title (core/proctitle.py)
        if b"looop.sessions.supervisor" in argv[:3]:  # a supervisor started on its own
            return True, None
        if b"looop.sessions.host" in argv[:3] and comm.startswith(b"looop:"):
            # a supervisor forked by a host keeps the host's command line: --key, --base
            opts = options([a.decode("utf-8", "replace") for a in argv[3:]])[0]
            key, pbase = opts.get("--key", ""), opts.get("--base", "")
            ok = key.isalnum() and pbase.startswith("/")
            return True, (host_socket(key, pbase) if ok else None)
        fields = stat[close + 2 :].split()
        pid = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    return False, None


def _titled_host(title: bytes) -> str | None:
    """The host a supervisor's title names (`looop: supervisor w1 (host @looop-…-host-KEY)`,
    host.py), as an address; None for one started on its own or a title not of that shape."""
    _, mark, rest = title.decode("utf-8", "replace").partition(" (host @")
    name = rest.removesuffix(")")
    parts = name.split("-")  # looop, uid, runtime dir's hash, "host", key
    ok = mark and len(parts) == 5 and parts[:1] == ["looop"] and parts[3] == "host"
    if not ok or not all(p.isalnum() for p in parts):
        return None
    return "\0" + name


def _launch_via(pad: str, cmd: list[str], env: Mapping[str, str], err: str) -> bool:
    """Ask the host listening on `pad` (outside the supervisor above us) to start `cmd`."""
    sock = connect(pad)
    if sock is None:
        return False
    try:
        if peer(sock)[1] != os.geteuid():
            return False
        body = dumps({"launch": cmd, "env": dict(env), "err": err}).encode()
        try:
            sock.sendall(body + b"\n")
        except OSError:
            return False
        line = read_line(sock.fileno(), START_TIMEOUT_S)
        return line is not None and line.startswith(b"ok")
    finally:
        sock.close()


def read_line(fd: int, timeout_s: float) -> bytes | None:
    """One readiness line from a starting process: None on timeout, b"" when it closed
    without one (the spawner's handshake with a supervisor and with a host)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    buf = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buf and len(buf) < 4096:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def start_ready(
    cmd: list[str], tail: list[str], *, err: int, cwd: str, env: Mapping[str, str], timeout: float
) -> bytes | None:
    """Start `cmd --ready-fd N tail`, a daemon-to-be (it forks once more and its intermediate
    exits): own session, no stdin/stdout, stderr to `err`, only its ready fd inherited. Its
    readiness line (read_line's); OSError when it cannot start."""
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            [*cmd, "--ready-fd", str(w), *tail],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
            pass_fds=(w,),
        )
    except OSError:
        os.close(r)
        raise
    finally:
        os.close(w)
    try:
        return read_line(r, timeout)
    finally:
        os.close(r)
        try:
            proc.wait(timeout=timeout)  # the intermediate exits right after forking
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _key_of(home: str | None, key: str | None) -> str:
    if key is None and home is None:
        raise ValueError("name the host by its home (data dir) or its key")
    return key if key is not None else home_key(str(home))


def stop_host(base: str = "/tmp", home: str | None = None, *, key: str | None = None) -> bool:
    """Ask the host of the data dir `home` (or of `key`) for this build to exit (tests,
    `looop down`); True when one answered."""
    return _stop_at(host_socket(_key_of(home, key), base))


def _stop_at(address: str) -> bool:
    sock = connect(address)
    if sock is None:
        return False
    try:
        if peer(sock)[1] != os.geteuid():
            return False  # another user's name: not ours to stop
        sock.settimeout(2.0)
        with contextlib.suppress(OSError):
            sock.sendall(b'{"stop": true}\n')
            sock.recv(64)
    finally:
        sock.close()
    return True
