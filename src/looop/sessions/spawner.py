"""Starting a session: the readiness handshake with a new supervisor, forked by the session
host (host.py) or, without one, started as its own interpreter; and the host's client side:
a supervisor start handed to a home's host (`host_request`), a host started, found, asked to
launch another, or asked to stop. The host process itself never imports this module (it
starts processes: subprocess and pathlib load here); the names both sides share are
`hostnames`.

Kept apart from client.py so a worker start loads only what a start needs (no socket
module, no log readers)."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from looop.home.anchors import shown
from looop.home.errors import CorruptState
from looop.home.jsonio import dumps
from looop.home.logfiles import MAX_BYTES, MAX_FILES
from looop.home.peers import caller_limits, connect, peer
from looop.home.sessionfiles import ensure_private_dir
from looop.home.where import runtime_base, runtime_dir
from looop.sessions.hostnames import HOST_IDLE_S, home_key, host_socket, options
from looop.sessions.state import (
    SUPERVISOR_ERR,
    Session,
    SessionError,
    get_session,
    load_session,
    reuse,
    session_dir,
    validate_id,
)

if TYPE_CHECKING:
    import socket

READY_TIMEOUT_S = 10.0


def _ms(secs: float | None, when: bool = True) -> str | None:
    """Seconds as a flag's milliseconds (at least 1); None (no flag) without them."""
    return str(max(1, round(secs * 1000))) if secs is not None and when else None


def spawn(
    root: Path,
    sid: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    size: tuple[int, int] = (80, 24),
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    host_idle_s: float = HOST_IDLE_S,
    log_cap: tuple[int, int] | None = None,
    restart: tuple[float, float] | None = None,
    watchdog: tuple[str, float] | None = None,
    final_exit: int | None = None,
    end_note: str | None = None,
    box_tty: bool = False,
    bounds: tuple[int, int] | None = None,
    history: tuple[int, str] | None = None,
) -> Session:
    """Start `argv` in a new detached session; returns once its supervisor says it is ready.

    host_idle_s > 0: the session host forks the supervisor (started on demand, exits after
    that long unused); 0: the supervisor starts as its own interpreter. `log_cap`: output.log
    rotates at max bytes into at most max files, earlier runs' logs counted (None: defaults).
    `restart` (first delay, cap): a run that fails (exit code != 0, or a signal no kill op
    sent) starts again after a delay that doubles up to the cap; `watchdog` (file, grace): a
    run whose file was not touched within the seconds its text promises plus the grace is
    ended as failed (so it restarts too); `final_exit`: the code never restarted (systemd's
    RestartPreventExitStatus); `end_note`: where the child may say which signal ended it
    (child.signal_in_note); `box_tty`: the PTY is nobody's controlling terminal, for the
    child to take in its box; `bounds`: (processes, memory bytes), 0: none (core/limits);
    `history` (restarts, last cause): what the session's lost supervisor had counted."""
    sdir = _clear_for_start(root, sid, argv, size, log_cap)
    flags = {  # the supervisor's argv up to `--ready-fd` (added with the command): None, none
        "id": sid,
        "root": os.path.abspath(root),
        "size": f"{size[0]}x{size[1]}",
        "timeout-ms": _ms(timeout_s, (timeout_s or 0) > 0),
        "idle-timeout-ms": _ms(idle_timeout_s, (idle_timeout_s or 0) > 0),
        "log-max-bytes": log_cap and log_cap[0],
        "log-max-files": log_cap and log_cap[1],
        "restart-ms": restart and _ms(restart[0]),
        "restart-max-ms": restart and _ms(restart[1]),
        "final-exit": final_exit if restart is not None else None,
        "watchdog-file": watchdog and os.path.abspath(watchdog[0]),
        "watchdog-ms": watchdog and _ms(watchdog[1]),
        "end-note": end_note or None,  # the child's end note, its box, bounds, history
        "box-tty": 1 if box_tty else None,
        "max-pids": bounds and bounds[0],
        "max-memory-bytes": bounds and bounds[1],
        "restarts": history and history[0],  # started again after its supervisor was lost
        "last-cause": history and history[1].replace("\n", " "),
    }
    cmd = [sys.executable, "-m", "looop.sessions.supervisor"]
    cmd += [a for k, v in flags.items() if v is not None for a in (f"--{k}", str(v))]
    return _started(root, sid, cwd, _ready_line(cmd, argv, sdir, cwd, env, host_idle_s, str(root)))


def _clear_for_start(
    root: Path,
    sid: str,
    argv: Sequence[str],
    size: tuple[int, int],
    log_cap: tuple[int, int] | None,
) -> Path:
    """The request checked and the id's folder ready for a new run (the last run's corpse
    cleared, its newest logs kept); the folder."""
    validate_id(sid)
    if not argv:
        raise SessionError(f"cannot start session `{sid}`: the command is empty")
    cols, rows = size
    if cols <= 0 or rows <= 0:
        raise SessionError(f"invalid size {cols}x{rows}: use positive COLSxROWS, e.g. 120x40")
    sdir = session_dir(root, sid)
    try:
        existing = load_session(sdir)
    except CorruptState as e:
        raise SessionError(
            f"session `{sid}` has unreadable state ({e}); remove {sdir} to reuse the id"
        ) from e
    if existing is not None:
        if existing.alive:
            raise SessionError(f"session `{sid}` is already running; kill it or pick another id")
        if not reuse(root, sid, (log_cap or (MAX_BYTES, MAX_FILES))[1] - 1):
            raise SessionError(f"session `{sid}` could not be cleared for reuse; try again")
    os.makedirs(sdir, exist_ok=True)
    return Path(sdir)


def _started(root: Path, sid: str, cwd: Path, line: bytes | None) -> Session:
    """The new session, once its supervisor's readiness line says ok; else what went wrong."""
    err = os.path.join(session_dir(root, sid), SUPERVISOR_ERR)
    text = (line or b"").decode("utf-8", "replace").strip()
    if text.startswith("err-cwd"):
        raise SessionError(f"cannot start session `{sid}` in {cwd}: {text[8:].strip()}")
    if text.startswith("ok"):
        return get_session(root, sid)
    if text.startswith("err"):
        raise SessionError(f"cannot start session `{sid}`: {text[3:].strip()}")
    if line is None:
        raise SessionError(
            f"session `{sid}` did not report ready within {READY_TIMEOUT_S:g}s (see {err})"
        )
    raise SessionError(f"session `{sid}`: its supervisor exited before it was ready (see {err})")


def _ready_line(
    cmd: list[str],
    argv: Sequence[str],
    sdir: Path,
    cwd: Path,
    env: Mapping[str, str],
    idle_s: float,
    home: str,
) -> bytes | None:
    """The new supervisor's readiness line. The host of the data dir `home` forks it (see
    host.py) and the line comes back on the same connection; with no host (`idle_s` 0, or
    none to be had or serving this caller) it starts as its own interpreter."""
    args = [*cmd[3:], "--", *argv]  # the host already is `python -m looop.sessions.supervisor`
    for _ in range(2 if idle_s > 0 else 0):
        try:
            sock = host_request(
                args,
                cwd=str(cwd),
                env=env,
                err_path=str(sdir / SUPERVISOR_ERR),
                home=home,
                idle_s=idle_s,
                base=runtime_base(env),
            )
        except HostUnavailable:
            break
        try:
            line = read_line(sock.fileno(), READY_TIMEOUT_S)
            if line is None or not line.startswith(b"unavailable"):
                return line
            # the host will not serve this caller (another namespace, a sandbox): its
            # supervisor starts here, within the caller's own limits
            break
        except ConnectionResetError:
            # A host that was going away closed the connection with our request unread:
            # nothing started. Once more (a new host comes up), then without a host.
            continue
        finally:
            sock.close()
    return _spawn_direct(cmd, argv, sdir, cwd, env)


def _spawn_direct(
    cmd: list[str], argv: Sequence[str], sdir: Path, cwd: Path, env: Mapping[str, str]
) -> bytes | None:
    """The supervisor as its own interpreter (no host, or the host could not be reached)."""
    try:
        with open(sdir / SUPERVISOR_ERR, "ab") as err:
            fd, tail = err.fileno(), ["--", *argv]
            return start_ready(cmd, tail, err=fd, cwd=str(cwd), env=env, timeout=READY_TIMEOUT_S)
    except OSError as e:
        return f"err-cwd {e.strerror or e}".encode()


# -- the session host's client side -------------------------------------------------------

START_TIMEOUT_S = 10.0


class HostUnavailable(Exception):
    """No host could take the request before anything was started: spawn directly."""


def host_request(
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
