"""The beat host: one preloaded parent per user, looop build and data dir (its home) that
forks `looop tick`s (and `looop worker start`s).

A beat from the CLI pays for an interpreter start and for importing sensing, hashing, the
event log and the data dir's readers: more than the beat itself when the world did not
change. The beat host pays the imports once: it preloads what a skip beat runs, freezes the
heap (`gc.freeze`) and keeps one fork of itself, the spare, waiting on its socket: the spare
takes the next `looop tick` and becomes its beat while the host forks the next spare, so no
caller waits for a fork. The beat runs exactly what the CLI runs (`cli.main.main` with the
caller's argv and env), in the caller's cwd, with the caller's stdin, stdout and stderr
(passed over the socket), umask, limits and nice value; the caller waits for its exit code,
forwards SIGINT/SIGTERM/SIGHUP to it and exits with that code.

Nothing depends on the host. When none answers, `looop tick` starts one in the background and
runs its beat in its own process as before; the host exits after `LOOOP_BEAT_HOST_IDLE`
seconds unused (0: no host, every tick runs in its own process) or at `looop down`. A host
whose preloaded code changed on disk (an edit, an upgrade) answers `stale` and exits, so a
beat never runs older code than the caller's. A host serves the data dir it was started for
(the caller's env and cwd resolve to it; any other is `unavailable`), and is started like the
session host: never under a session's supervisor (`hostclient.start_host_process`).

Wire: the client connects to the abstract name `@looop-<uid>-<runtime dir's hash>-beat-<key>`
(hot/anchors.py; each side checks the other's uid) and sends
NUL-terminated `name=value` fields (`argv=` per argument, `cwd=`, `umask=`, `nice=`,
`limit=NAME:soft:hard`, `env=K=V` per variable; none may hold a NUL, as in exec's own argv and
environ) ended by an empty field, with its fds 0, 1, 2 attached (SCM_RIGHTS). The host
answers `pid N` once the child runs (or `unavailable …` / `stale`: nothing ran) and the child
answers `exit N` when the beat is over. `stop` alone asks the host to exit.
"""

from __future__ import annotations

import _socket
import fcntl
import gc
import importlib
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping

from looop.core.cgroup import Pen
from looop.core.procs import libc_prctl
from looop.core.proctitle import show_role
from looop.core.sameworld import Here, same_world
from looop.hot import killfast, workerstart
from looop.hot.beatclient import FDS as FDS
from looop.hot.beatclient import IDLE_ENV as IDLE_ENV
from looop.hot.beatclient import IDLE_S as IDLE_S
from looop.hot.beatclient import INT_BYTES, PACKAGE
from looop.hot.beatclient import REQUEST_MAX as REQUEST_MAX
from looop.hot.beatclient import beat_key as beat_key
from looop.hot.beatclient import beat_remotely as beat_remotely
from looop.hot.beatclient import beat_socket as beat_socket
from looop.hot.beatclient import encode_request as encode_request
from looop.hot.beatclient import home_of as home_of
from looop.hot.beatclient import idle_secs as idle_secs
from looop.hot.beatclient import stop_beat_host as stop_beat_host
from looop.hot.beatclient import stop_beat_hosts as stop_beat_hosts
from looop.hot.clock import SystemClock
from looop.hot.main import main
from looop.hot.peers import LIMITS, peer
from looop.hot.where import runtime_base
from looop.sessions.codewatch import CodeWatch
from looop.sessions.hostnames import host_options, lock_holder
from looop.sessions.preloaded import (
    apply_limits,
    become_host,
    limit_plan,
    listen_at,
    say,
    unlisten,
)
from looop.sessions.spares import (
    OVER,
    TAKEN,
    die_with_parent,
    keep_a_spare,
    outlive_parent,
)

# What a skip beat runs: loaded once in the host, shared copy-on-write by every child.
PRELOAD = (
    "looop.hot.main",
    "looop.cli.failure",
    "looop.hot.tickfast",
    "looop.cli.ctxbuild",
    "looop.cli.tickwork",
    "looop.loop.tick",
    "looop.act.wal",
    "looop.seed",
    "datetime",
    "looop.hot.localtime",  # a move's events word their local time: else each child loads it
    # what `looop worker start` runs: the move, the executor, the worker's launch and spawn
    "looop.hot.workerstart",
    "looop.hot.killfast",  # and `looop kill`, the same move machinery and the session client
    "looop.sessions.client",
    "looop.hot.logs",
    "looop.cli.steermove",
    "looop.cli.startwork",
    "looop.act.actions",
    "looop.act.executor",
    "looop.workers.launch",
    "looop.sessions.spawner",
)
# The interpreter's own settings a caller's environment may change: a caller with others
# gets a host of its own (the host's interpreter started under its first caller's).

# -- the host process ----------------------------------------------------------------------


class Request:
    """A parsed request: what the child needs to become the caller's `looop tick`."""

    def __init__(self) -> None:
        self.argv: list[str] = []
        self.cwd = ""
        self.umask: int | None = None
        self.nice: int | None = None
        self.limits: dict[str, list[int]] = {}
        self.env: dict[str, str] = {}
        self.stop = False


def decode_request(raw: bytes) -> Request | None:
    """The fields up to the empty one; None for anything malformed (an unknown field, a bad
    number, a variable without a name, a command other than the two a tick takes)."""
    end = raw.find(b"\0\0")
    if end < 0:
        return None
    req = Request()
    text = raw[:end].decode("utf-8", "surrogateescape")
    if text == "stop":
        req.stop = True
        return req
    for field in text.split("\0"):
        name, eq, value = field.partition("=")
        if not eq:
            return None
        if name == "argv":
            req.argv.append(value)
        elif name == "cwd":
            req.cwd = value
        elif name in ("umask", "nice"):
            if not value.lstrip("-").isdigit():
                return None
            setattr(req, name, int(value))
        elif name == "limit":
            which, _, pair = value.partition(":")
            soft, _, hard = pair.partition(":")
            if which not in LIMITS or not all(v.lstrip("-").isdigit() for v in (soft, hard)):
                return None
            req.limits[which] = [int(soft), int(hard)]
        elif name == "env":
            key, eq, val = value.partition("=")
            if not key or not eq:
                return None
            req.env[key] = val
        else:
            return None
    if not req.cwd.startswith("/") or not served_verb(req.argv):
        return None  # only what the CLI's fast path serves
    return req


def served_verb(argv: list[str]) -> bool:
    """A plain `looop tick`, or a `looop worker start` or `looop kill` the fast path parses:
    nothing else runs in a child of the host."""
    if argv in (["tick"], ["tick", "--force"]):
        return True

    return workerstart.parse_fast(argv) is not None or killfast.parse_fast(argv) is not None


def _preload() -> dict[str, tuple[int, int]]:
    """Import what a skip beat runs; (size, mtime) of every looop file that loaded."""

    for name in PRELOAD:
        importlib.import_module(name)
    files: dict[str, tuple[int, int]] = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if isinstance(f, str) and f.startswith(PACKAGE + os.sep):
            try:
                st = os.stat(f)
            except OSError:
                continue
            files[f] = (st.st_size, st.st_mtime_ns)
    return files


def serve(argv: list[str]) -> int:
    """The host process: preload, bind, say ready, then keep one spare fork waiting on the
    socket (`sessions/spares.keep_a_spare`) until idle, stopped or stale."""

    started = become_host(argv, "beat-{key}.lock", IDLE_S, "another beat host is serving")
    if started is None:
        return 0
    key, base, idle_s, ready_fd, lock_fd = started

    opts = host_options(argv)
    # the home as its first caller named it; "" (no data dir) serves nobody
    home = home_of(os.environ, opts.get("--cwd", "/"))

    # the kernel reaps every spare and beat the host forks: no intermediate, no zombie
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    host = _Host(lock_fd, home, CodeWatch(_preload()))
    show_role(f"looop: beat host {home.partition(chr(0))[0]}", "looop-beat")  # path, not inode
    path = beat_socket(key, base)
    ino = listen_at(host.listener, path)
    gc.collect()
    gc.freeze()
    say(ready_fd, f"ok {os.getpid()}")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.close(devnull)
    host.listener.settimeout(idle_s)
    try:
        return keep_a_spare(host.notes_r, lambda: _spare(host), host.listener.fileno())
    finally:
        unlisten(path, ino)
        host.listener.close()


class _Host:
    """What the host made before its first fork, shared by every spare."""

    def __init__(self, lock_fd: int, home: str, watch: CodeWatch) -> None:
        self.lock_fd = lock_fd
        self.home = home
        self.watch = watch
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.here = Here()  # the host's own world, read once
        self.prctl = libc_prctl()
        self.pid = os.getpid()
        self.notes_r, self.notes_w = os.pipe()  # a spare's word to the host, one byte


def _spare(host: _Host) -> None:
    """Wait for a request; run it (this process becomes the beat) or refuse it and wait
    again. Says OVER when idle for the host's idle time, stopped or stale."""
    os.close(host.notes_r)
    os.close(host.lock_fd)
    if not die_with_parent(host.prctl, host.pid):
        return
    show_role(f"looop: beat spare {host.home.partition(chr(0))[0]}", "looop-spare")
    _warm(host)
    pen = Pen()  # a beat's sensors are born in it, with no move then (core/cgroup.py)
    pen.enter()
    while True:
        try:
            conn, _ = host.listener.accept()
        except TimeoutError:
            pen.close()
            os.write(host.notes_w, OVER)
            return
        except OSError as e:  # out of descriptors or memory: say so, keep serving
            sys.stderr.write(f"looop beat host: accept failed: {e}\n")
            continue
        try:
            taken = _take(conn, host)
        except Exception as e:  # one bad request never ends the host
            sys.stderr.write(f"looop beat host: request failed: {e!r}\n")
            taken = None
        if isinstance(taken, tuple):
            os.write(host.notes_w, TAKEN)  # the host forks the next spare meanwhile
            os.close(host.notes_w)
            host.listener.close()
            outlive_parent(host.prctl)  # a beat outlives a host that goes
            _child(conn, *taken, pen)
        conn.close()
        if taken == OVER:
            pen.close()
            os.write(host.notes_w, OVER)
            return


def _read_request(conn: socket.socket) -> tuple[bytes, list[int]]:
    """The request's bytes and the fds that came with them."""
    conn.settimeout(5.0)
    msg, anc, _flags, _addr = conn.recvmsg(65536, _socket.CMSG_SPACE(FDS * INT_BYTES))
    fds: list[int] = []
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            for i in range(0, len(data) - INT_BYTES + 1, INT_BYTES):
                fds.append(int.from_bytes(data[i : i + INT_BYTES], sys.byteorder, signed=True))
    buf = bytearray(msg)
    try:
        while msg and b"\0\0" not in buf and len(buf) <= REQUEST_MAX:
            msg = conn.recv(65536)
            buf += msg
    except OSError:
        pass  # a slow or vanished peer: what came so far decides
    return bytes(buf), fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _reply(conn: socket.socket, line: bytes) -> None:
    try:
        conn.sendall(line)
    except OSError:
        pass  # the caller went away: it runs nothing either way


def _warm(host: _Host) -> None:
    """Run, before any caller waits, what each request runs first. A fork shares the host's
    pages until it writes one (a reference count is a write), so the first run of any code
    pays for copying its pages: the spare pays them while it waits."""
    same_world(os.getpid(), host.here)
    home_of(os.environ, "/")
    decode_request(b"argv=kill\0argv=w\0cwd=/\0umask=18\0nice=0\0env=A=b\0\0")
    decode_request(b"argv=tick\0cwd=/\0\0")
    _stdio()  # on the spare's own fds 0-2, thrown away unwritten


def _take(conn: socket.socket, host: _Host) -> tuple[Request, list[int], int] | bytes | None:
    """One request checked: (request, its fds, caller) to run; OVER when the host should
    end (asked to, or its code went stale); None once refused with a reason."""

    fds: list[int] = []
    try:
        caller, uid = peer(conn)
        if uid != os.geteuid():
            return None
        raw, fds = _read_request(conn)
        req = decode_request(raw) if len(raw) <= REQUEST_MAX else None
        if req is None:
            _reply(conn, b"unavailable malformed request\n")
            return None
        if req.stop:
            _reply(conn, b"ok stopping\n")
            return OVER
        if len(fds) != FDS:
            _reply(conn, b"unavailable no stdio came with the request\n")
            return None
        if not same_world(caller, host.here):
            _reply(conn, b"unavailable the caller sees another filesystem or namespace\n")
            return None
        if not host.home or home_of(req.env, req.cwd) != host.home:  # another home's
            _reply(conn, b"unavailable this beat host serves another data dir\n")
            return None
        if not host.watch.fresh():
            _reply(conn, b"stale\n")
            return OVER
        taken, fds = fds, []  # the beat owns them now
        return req, taken, caller
    finally:
        _close_all(fds)  # refused: a caller's pipe must see its EOF


def _child(conn: socket.socket, req: Request, fds: list[int], caller: int, pen: Pen) -> None:
    """The spare become the beat, in a session of its own; the kernel reaps it (SIGCHLD
    ignored in the host), so nothing waits for it there. Its pen goes once its caller has
    the exit code: leaving it is a move, which the caller need not wait for."""

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its sensors and runner are waited for
    os.setsid()
    code: int | None = 1
    try:
        code = _beat(conn, req, fds, caller)
    except BaseException as e:  # never back into the host's loop
        try:
            sys.stderr.write(f"looop: the beat host's child failed: {e!r}\n")
        except Exception:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if code is not None:
            _reply(conn, f"exit {code}\n".encode())
        try:
            pen.close()
        finally:
            os._exit(0)


def _beat(conn: socket.socket, req: Request, fds: list[int], caller: int) -> int | None:
    """In the forked beat: become the caller's `looop tick` and run it; its exit code, or
    None when it could not start (the caller then runs it itself)."""

    try:
        os.chdir(req.cwd)
    except OSError:
        _reply(conn, b"unavailable cannot enter the caller's directory\n")
        return None
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_all(fds)
    if req.umask is not None:
        os.umask(req.umask & 0o777)
    apply_limits(*limit_plan(req.limits, req.nice))
    os.environ.clear()
    os.environ.update(req.env)
    time.tzset()  # the C library read TZ when the host started: read the caller's
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdin, sys.stdout, sys.stderr = _stdio()
    word = req.argv[0] if req.argv[0] in ("tick", "kill") else "start"
    show_role(f"looop: {word} {home_of(req.env, req.cwd).partition(chr(0))[0]}", f"looop-{word}")
    _reply(conn, f"pid {os.getpid()}\n".encode())
    _watch_caller(conn)

    clock = SystemClock(req.env.get("TZ"))  # injected: the beat runs here, never asks again
    try:
        main(list(req.argv), dict(req.env), clock, caller=caller)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return int(e.code or 0)
        sys.stderr.write(f"{e.code}\n")
        return 1
    return 0


def _stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """Fresh stdio on fds 0-2 (the caller's, once dup'ed there), buffered as an interpreter
    started there would be."""
    return (
        io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8"),
        io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=os.isatty(1)
        ),
        io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        ),
    )


def _watch_caller(conn: socket.socket) -> None:
    """The caller going away without a word (killed) ends this beat as a SIGTERM would. The
    kernel says so with SIGIO on the connection (O_ASYNC): no thread, since a second thread
    would keep sensors from the fast single-threaded spawn."""

    def hung_up(_signum: int, _frame: object) -> None:
        try:
            if conn.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT):
                return  # bytes (the caller sends none): not a hang-up
        except BlockingIOError:
            return  # a wake-up with nothing to read
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    conn.settimeout(None)  # else a timed socket turns MSG_DONTWAIT's EAGAIN into a wait
    signal.signal(signal.SIGIO, hung_up)
    fd = conn.fileno()
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    hung_up(signal.SIGIO, None)  # it may have gone before the signal was armed


def beat_host_pid(env: Mapping[str, str], base: str | None = None, cwd: str = "/") -> int | None:
    """The pid of this build's live beat host for the data dir of `env` (the holder of its
    socket), or None: tests and status readers ask, never a verb's caller."""
    return lock_holder(beat_socket(beat_key(env, cwd=cwd), base or runtime_base(env)))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
