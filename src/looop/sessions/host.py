"""The session host: one preloaded parent per user, looop build and data dir (its home) that
forks supervisors.

Starting a supervisor as a fresh interpreter costs ~150 ms and ~14 MB of its own memory per
session. The host pays that once: it imports the supervisor, warms it, freezes the heap
(`gc.freeze`, so collections never touch the shared pages) and then forks a supervisor per
request. A forked supervisor shares the host's pages copy-on-write and is ready in a few ms.

Each supervisor is still its own process, detached exactly as before (new session, double
fork, adopted by init): a crash in one session, or in the host, takes no other session down.
The host holds no session state; it lives while a session of its home does and exits once
none does and it had no request for min(`--idle-s`, 10) seconds; a spawn that finds no host
starts one (or, if it cannot, starts the supervisor directly).

A host serves one home: its socket is named by the build and the data dir (see `home_key`), it
refuses a supervisor for any other data dir, and its environment is the one its home's first
spawn gave it, so nothing of one home's environment reaches another's supervisors.

A host is never started under a session's supervisor (a subreaper: it would adopt the host and
every supervisor the host forks). A spawn from inside a worker asks the host that forked that
worker's supervisor to start the new host (`launch`), so it hangs off init like the first;
with no such host it starts its supervisor directly.

Wire: the client connects to `/tmp/looop-<uid>/host-<key>.sock` (a private dir), sends one
JSON line {"args", "cwd", "env", "umask", "err"} and reads one line back on the same
connection: the supervisor's own readiness line (`ok PID` / `err …`), or the host's `err …`
when it could not fork (`unavailable …`: start it directly). `key` names the interpreter, the
code and the home, so a host never serves a session with code older than the caller's.

This module is the client side too; only `serve` (the host process) loads the supervisor.
"""

from __future__ import annotations

import _socket  # not `socket`: its enums cost a worker start ~3 ms; the host loads it
import contextlib
import os
import sys
import time

from looop.core import cgroup
from looop.core.peers import LIMITS, caller_limits, connect, peer, same_world
from looop.core.where import runtime_dir

TYPE_CHECKING = False

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence
    from types import ModuleType

HOST_IDLE_S = 300.0  # the knob's default: see HOMELESS_IDLE_S
# A host lives while a session of its home does (the pulse's, a worker's: a start from inside
# one is launched by this host, see `launch`); once none does, it exits after
# min(idle, this) unused: a test run's many homes leave no hosts lingering.
HOMELESS_IDLE_S = 10.0
REQUEST_MAX = 4 * 1024 * 1024
START_TIMEOUT_S = 10.0
KEEP_PREPARED = 256  # requests whose objects the host keeps (see _serve_one)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class HostUnavailable(Exception):
    """No host could take the request before anything was started: spawn directly."""


# -- naming --------------------------------------------------------------------------------


def _fnv(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def host_key(executable: str = sys.executable) -> str:
    """Interpreter + every module file the host preloads (path, size, mtime): an edited or
    upgraded looop gets a new host; the old one idles out."""
    parts = [executable, _PACKAGE]
    with contextlib.suppress(OSError):
        st = os.stat(os.path.join(_PACKAGE, "__init__.py"))  # the version lives there
        parts.append(f"__init__.py:{st.st_size}:{st.st_mtime_ns}")
    for room in ("sessions", "core"):
        d = os.path.join(_PACKAGE, room)
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(d)):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(d, name))
                    parts.append(f"{room}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return _fnv("\n".join(parts).encode())[:12]


def home_id(root: str) -> str:
    """A data dir's identity: its real path and inode (one removed and made again under the
    same name is another home, and so is a symlink's target moved)."""
    real = os.path.realpath(root)
    try:
        st = os.stat(real)
    except OSError:
        return real
    return f"{real}\0{st.st_dev}:{st.st_ino}"


def home_key(root: str, build: str | None = None) -> str:
    """The socket name of the host serving the data dir `root` for this build."""
    return _fnv(f"{build or host_key()}\n{home_id(root)}".encode())


def host_dir(base: str = "/tmp") -> str:
    return runtime_dir(base)


def host_socket(key: str, base: str = "/tmp") -> str:
    return os.path.join(host_dir(base), f"host-{key}.sock")


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
) -> _socket.socket:
    """Hand a supervisor start to the host of the data dir `home` (starting one when none
    answers); returns the connection the supervisor's readiness line will arrive on.
    HostUnavailable when no host took the request (nothing was started)."""
    from pathlib import Path  # lazy: the client side of a spawn only

    from looop.sessions.state import ensure_private_dir

    key = home_key(home)
    ensure_private_dir(Path(host_dir(base)))  # never hand an env to another user's socket
    path = host_socket(key, base)
    sock = connect(path)
    if sock is None:
        _start_host(key, idle_s, env, base, home)
        sock = connect(path)
        if sock is None:
            raise HostUnavailable(f"the session host did not answer on {path}")
    if peer(sock)[1] != os.geteuid():
        sock.close()
        raise HostUnavailable(f"{path} is served by another user")
    umask = os.umask(0o022)
    os.umask(umask)
    from looop.core.ljson import dumps  # lazy: json over the C accelerator, no `json`

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


def _limit_plan(limits: object, nice: object) -> tuple[list[tuple[int, int, int]], int | None]:
    """In the host, before the fork: which of the caller's limits (and nice value) differ
    from the host's own, so the forked supervisor only sets those (lowering is always
    allowed; a limit the host cannot raise stays the host's)."""
    import resource  # lazy: the host process only

    plan: list[tuple[int, int, int]] = []
    if isinstance(limits, dict):
        for name, pair in limits.items():
            which = getattr(resource, name, None) if name in LIMITS else None
            if which is None or not isinstance(pair, list) or len(pair) != 2:
                continue
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if ints and tuple(pair) != resource.getrlimit(which):
                plan.append((which, pair[0], pair[1]))
    want = None
    if isinstance(nice, int) and not isinstance(nice, bool):
        want = max(-20, min(19, nice))
        if want == os.getpriority(os.PRIO_PROCESS, 0):
            want = None
    return plan, want


def _apply_limits(plan: list[tuple[int, int, int]], nice: int | None) -> None:
    """In the forked supervisor: what `_limit_plan` found different."""
    if plan:
        import resource  # lazy: the host process only

        for which, soft, hard in plan:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (soft, hard))
    if nice is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def _start_host(key: str, idle_s: float, env: Mapping[str, str], base: str, home: str) -> None:
    """Start the host of `home` and wait until it listens (or says another one already
    does); never under a session's supervisor (see `start_host_process`)."""
    cmd = [sys.executable, "-m", "looop.sessions.host", "--key", key, "--base", base]
    cmd += ["--home", os.path.abspath(home), "--idle-s", f"{idle_s:g}"]
    if not start_host_process(cmd, env, os.path.join(host_dir(base), f"host-{key}.err")):
        raise HostUnavailable("no session host can start outside this worker's supervisor")


def start_host_process(
    cmd: list[str], env: Mapping[str, str], err_path: str, wait: bool = True
) -> bool:
    """Start a preloaded host (`cmd` gets `--ready-fd N`) detached, its stderr to `err_path`;
    with `wait`, until it said ready. Under a session's supervisor (a subreaper) the host that
    forked that supervisor starts it, so it too hangs off init; False when there is none (or
    it refused): start nothing, do without a host. OSError/HostUnavailable when it could not
    start at all."""
    inside, pad = enclosing_host()
    if inside:
        return pad is not None and _launch_via(pad, cmd, env, err_path, wait)
    # lazy: only the first spawn after the host idled out pays for subprocess
    import subprocess
    from pathlib import Path

    from looop.sessions.state import ensure_private_dir

    ensure_private_dir(Path(os.path.dirname(err_path)))
    r, w = os.pipe()
    try:
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        err = os.open(os.devnull, os.O_WRONLY)
    try:
        proc = start_detached([*cmd, "--ready-fd", str(w)], err=err, cwd="/", env=env, ready_w=w)
    except OSError as e:
        os.close(r)
        raise HostUnavailable(f"cannot start the session host: {e}") from e
    finally:
        os.close(w)
        os.close(err)
    if not wait:  # the caller goes on; the intermediate is reaped when it exits
        os.close(r)
        return True
    try:
        read_line(r, START_TIMEOUT_S)
    finally:
        os.close(r)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=START_TIMEOUT_S)  # the intermediate exits once the host forked
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
        if b"looop.sessions.supervisor" in argv[:3]:  # a supervisor started on its own
            return True, None
        if b"looop.sessions.host" in argv[:3] and comm.startswith(b"looop:"):
            # a supervisor forked by a host keeps the host's command line: --key, --base
            opts = _parse([a.decode("utf-8", "replace") for a in argv[3:]])
            key, pbase = opts.get("--key", ""), opts.get("--base", "")
            ok = key.isalnum() and pbase.startswith("/")
            return True, (host_socket(key, pbase) if ok else None)
        fields = stat[close + 2 :].split()
        pid = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    return False, None


def _launch_via(pad: str, cmd: list[str], env: Mapping[str, str], err: str, wait: bool) -> bool:
    """Ask the host listening on `pad` (outside the supervisor above us) to start `cmd`."""
    sock = connect(pad)
    if sock is None:
        return False
    try:
        if peer(sock)[1] != os.geteuid():
            return False
        from looop.core.ljson import dumps  # lazy: json over the C accelerator, no `json`

        body = dumps({"launch": cmd, "env": dict(env), "err": err}).encode()
        try:
            sock.sendall(body + b"\n")
        except OSError:
            return False
        if not wait:
            return True  # the pad read the request before it looks at its caller again
        line = read_line(sock.fileno(), START_TIMEOUT_S)
        return line is not None and line.startswith(b"ok")
    finally:
        sock.close()


def read_line(fd: int, timeout_s: float) -> bytes | None:
    """One readiness line from a starting process: None on timeout, b"" when it closed
    without one (the spawner's handshake with a supervisor and with a host)."""
    import select  # lazy: cheap, but only a start's handshake needs it

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


def start_detached(
    cmd: list[str], *, err: int, cwd: str, env: Mapping[str, str], ready_w: int
) -> subprocess.Popen[bytes]:
    """A daemon-to-be (it forks once more and its intermediate exits): own session, no
    stdin/stdout, stderr to `err`, only `ready_w` inherited. OSError when it cannot start."""
    import subprocess  # lazy: only a start without a host (or of the host) runs one

    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
        pass_fds=(ready_w,),
    )


def _key_of(home: str | None, key: str | None) -> str:
    if key is None and home is None:
        raise ValueError("name the host by its home (data dir) or its key")
    return key if key is not None else home_key(str(home))


def host_pid(base: str = "/tmp", home: str | None = None, *, key: str | None = None) -> int | None:
    """The pid of the live host of the data dir `home` (or of `key`) for this build, or None."""
    return lock_holder(os.path.join(host_dir(base), f"host-{_key_of(home, key)}.lock"))


def lock_holder(path: str) -> int | None:
    """The pid a preloaded host wrote in its lock file while it holds the lock, or None."""
    from looop.core.store import flock_held  # lazy: only status readers and tests ask

    if not flock_held(path):
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(32).strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None


def _name(title: str) -> None:
    """What `ps -o comm` and `top` show for this process (15 bytes at most)."""
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, title[:15].encode("utf-8", "replace")[:15])
    except OSError:
        pass
    finally:
        os.close(fd)


def stop_hosts(base: str = "/tmp") -> int:
    """Ask every session host under the runtime dir to exit, whatever its build or home (a
    test run's end); how many answered."""
    try:
        names = os.listdir(host_dir(base))
    except OSError:
        return 0
    keys = [n[5:-5] for n in names if n.startswith("host-") and n.endswith(".sock")]
    return sum(stop_host(base, key=k) for k in keys)


def stop_host(base: str = "/tmp", home: str | None = None, *, key: str | None = None) -> bool:
    """Ask the host of the data dir `home` (or of `key`) for this build to exit (tests,
    `looop down`); True when one answered."""
    sock = connect(host_socket(_key_of(home, key), base))
    if sock is None:
        return False
    try:
        sock.settimeout(2.0)
        with contextlib.suppress(OSError):
            sock.sendall(b'{"stop": true}\n')
            sock.recv(64)
    finally:
        sock.close()
    return True


# -- the host process ----------------------------------------------------------------------


def become_host(
    argv: list[str], lock_name: str, idle_default: float, taken: str
) -> tuple[str, str, float, int | None, int] | None:
    """A preloaded host's start, the session host's and the beat host's alike: its options
    (--key, --base, --idle-s, --ready-fd), a session of its own, a second fork so that init
    adopts it, and its lock (`lock_name` formatted with the key) held. (key, base, idle_s,
    ready_fd, lock_fd), or None once it said `taken`: another host of that key holds it."""
    opts = _parse(argv)
    key, base = opts.get("--key", ""), opts.get("--base", "/tmp")
    idle_s = float(opts.get("--idle-s", str(idle_default)))
    ready_fd = int(opts["--ready-fd"]) if opts.get("--ready-fd", "").isdigit() else None
    if os.getsid(0) != os.getpid():  # started by hand; the spawner already made a session
        os.setsid()
    if os.fork() > 0:  # the starter waits for this intermediate; the host is adopted by init
        os._exit(0)
    cgroup.escape()  # started from a worker's run (the pulse's): never killed with that run
    lock_fd = hold_lock(os.path.join(host_dir(base), lock_name.format(key=key)))
    if lock_fd is None:
        say(ready_fd, f"ok {taken}")
        return None
    sweep(host_dir(base))
    return key, base, idle_s, ready_fd, lock_fd


_HOST_FILES = (".sock", ".lock", ".err")


def sweep(hdir: str) -> None:
    """What hosts that are gone left in the runtime dir (old builds that idled out, homes
    removed, crashes): a socket and lock whose lock nobody holds, with an empty error file; a
    half-bound socket name or a rehearsal dir whose process is dead. A host whose lock is held
    is never touched: the sweeper takes that very lock before it removes anything."""
    try:
        names = os.listdir(hdir)
    except OSError:
        return
    stems: set[str] = set()
    for name in names:
        path = os.path.join(hdir, name)
        if name.startswith(("host-", "beat-")) and name.endswith(_HOST_FILES):
            stems.add(name.rsplit(".", 1)[0])
        elif name.startswith("rehearsal-") and not _alive(name[10:]):
            _remove_tree(path)
        elif (
            name.startswith(("host-", "beat-"))
            and ".sock." in name
            and not _alive(name.rsplit(".", 1)[1])
        ):
            with contextlib.suppress(OSError):  # listen_at's temporary name, its binder dead
                os.unlink(path)
    for stem in stems:
        _sweep_host(os.path.join(hdir, stem))


def _sweep_host(stem: str) -> None:
    import fcntl  # lazy: the host processes only

    try:
        fd = os.open(stem + ".lock", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None  # a socket without a lock is no host's: none binds before it locks
    except OSError:
        return
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a live host's
        with contextlib.suppress(OSError):
            os.unlink(stem + ".sock")
        with contextlib.suppress(OSError):
            if os.stat(stem + ".err").st_size == 0:  # one with words says why it died
                os.unlink(stem + ".err")
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(stem + ".lock")
    finally:
        if fd is not None:
            os.close(fd)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not a name we made: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _parse(argv: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    for i in range(0, len(argv) - 1, 2):
        if argv[i].startswith("--"):
            opts[argv[i]] = argv[i + 1]
    return opts


def _warm(base: str, rounds: int = 10) -> None:
    """Run once in the host what every supervisor runs, so what CPython builds lazily (the
    specialised bytecode of each function it runs, module caches, pyte's tables) is built
    here and shared, instead of being written into every forked supervisor's own pages."""
    # lazy: the host process only (both are loaded by serve already)
    import looop.sessions.supervisor as supervisor
    from looop.sessions.screen import replay

    replay(b"\x1b[1mwarm\x1b[0m\r\n", 80, 24)
    root = os.path.join(host_dir(base), f"rehearsal-{os.getpid()}")
    env = {"PATH": os.defpath}
    try:
        for i in range(rounds):  # a whole short session: start, serve, child exit, finish
            args = supervisor.parse_args(["--id", f"r{i}", "--root", root, "--", "true"])
            sup = supervisor.Supervisor(args, env)
            sup.subreaper = False  # the host must never adopt its supervisors' orphans
            sup.run()
    except Exception as e:  # a rehearsal that fails costs memory, never the host
        sys.stderr.write(f"looop session host: rehearsal failed: {e!r}\n")
    finally:
        from looop.sessions.wire import socket_file  # lazy: the host process only

        _remove_tree(root)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(socket_file(root, "r0")))


def _remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) for the rehearsal's own few files, without
    shutil and the compression modules it loads into the host."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                _remove_tree(e.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _fill_pools() -> list[object]:
    """Take every free block of CPython's small-object pools, so what a forked supervisor
    allocates lands in fresh pages of its own instead of in holes spread over the host's
    shared pages (each hole it fills would cost it a whole copied page). The host keeps the
    fillers for life; they are never touched again."""
    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return []
    r, w = os.pipe()  # the report (a few KB) fits in the pipe: read once it is written
    saved = os.dup(2)
    try:
        os.dup2(w, 2)
        stats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    text = b"".join(chunks).decode("ascii", "replace")
    keep: list[object] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5 or not all(p.isdigit() for p in parts):
            continue
        size, avail = int(parts[1]), int(parts[4])
        if size == 16:  # a bare object() is 16 bytes, a float 24
            keep.extend(object() for _ in range(avail))
        elif size == 32:
            keep.extend(float(i) + 0.5 for i in range(avail))
        elif size > 33:  # a bytes object of n bytes takes 33 + n: exactly this class
            keep.extend(bytes([i & 0xFF]) * (size - 33) for i in range(avail))
    return keep


def serve(argv: list[str]) -> int:
    """The host process: bind, say ready, then fork a supervisor per request until idle."""
    import gc  # lazy: the host process only
    import resource  # noqa: F401  (preloaded: an import in a forked child copies ~0.7 MB)

    # lazy: the point of the host: everything a supervisor runs is loaded once, here
    import looop.sessions.supervisor as supervisor

    supervisor.preload()
    started = become_host(argv, "host-{key}.lock", HOST_IDLE_S, "another host is serving")
    if started is None:
        return 0
    key, base, idle_s, ready_fd, lock_fd = started
    home = _parse(argv).get("--home", "")
    own = home_id(home) if home.startswith("/") else ""  # no home: serve no supervisor
    _name("looop-host")
    path = host_socket(key, base)
    # `_socket`, as the client: the forked supervisor never runs socket.py's wrappers
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    ino = listen_at(listener, path)
    _warm(base)
    gc.collect()
    fillers = _fill_pools()
    kept: list[object] = []
    gc.freeze()
    say(ready_fd, f"ok {os.getpid()}")
    supervisor.detach_stdio()
    homeless = min(idle_s, HOMELESS_IDLE_S)
    listener.settimeout(homeless)
    del fillers[:0]  # (kept alive to the end of serve: see _fill_pools)
    last = time.monotonic()
    try:
        while True:
            try:
                conn = _socket.socket(fileno=listener._accept()[0])  # type: ignore[attr-defined]
            except TimeoutError:
                # with a live session at home a start from inside it needs us (a host started
                # there is launched from here): stay; with none, go once unused that long
                if time.monotonic() - last >= homeless and not _home_live(home):
                    return 0
                continue
            except OSError as e:  # out of descriptors or memory: say so, keep serving
                sys.stderr.write(f"looop session host: accept failed: {e}\n")
                time.sleep(0.05)
                continue
            last = time.monotonic()
            try:
                if _serve_one(conn, listener, lock_fd, supervisor, kept, own):
                    return 0
            except Exception as e:  # one bad request never ends the host
                sys.stderr.write(f"looop session host: request failed: {e!r}\n")
            finally:
                conn.close()
    finally:
        # the name first, so a new client starts a new host rather than queueing here
        unlisten(path, ino)
        listener.close()


def _home_live(home: str) -> bool:
    """Whether a supervisor holds the lock of any session in the data dir `home`."""
    from looop.sessions.wire import lock_held  # lazy: loaded by the supervisor already

    try:
        with os.scandir(os.path.join(home, "sessions")) as entries:
            return any(e.is_dir(follow_symlinks=False) and lock_held(e.path) for e in entries)
    except OSError:
        return False


def say(fd: int | None, line: str) -> None:
    """A preloaded host's readiness line to its starter (who may no longer wait for it)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


def hold_lock(path: str) -> int | None:
    """A preloaded host's lock, with its pid written at once (never a predecessor's); None
    when another host of the same key holds it."""
    import fcntl  # lazy: the host processes only

    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # a sweeper removed the name between our open and flock: again
    else:
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # lock_holder() reads it
    return fd


def listen_at(sock: _socket.socket, path: str) -> int:
    """Bind and listen under a temporary name, then rename onto `path`: a client sees a
    listening socket or none. The inode, for `unlisten`."""
    tmp = f"{path}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock.bind(tmp)
    sock.listen(64)
    os.rename(tmp, path)
    return os.stat(path).st_ino


def unlisten(path: str, ino: int) -> None:
    """Remove our socket's name, not a successor's that took it meanwhile."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == ino:
            os.unlink(path)


def _read_request(conn: _socket.socket) -> dict[str, object] | None:
    conn.settimeout(5.0)
    buf = bytearray()
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > REQUEST_MAX:
            return None
    from looop.core.ljson import loads  # lazy: the host process only; no `json`

    req = loads(bytes(buf).split(b"\n", 1)[0])
    return req if isinstance(req, dict) else None


def _serve_one(
    conn: _socket.socket,
    listener: _socket.socket,
    lock_fd: int,
    supervisor: ModuleType,
    kept: list[object],
    own: str,
) -> bool:
    """One request; True when it asked the host to stop."""
    try:
        caller, uid = peer(conn)
        if uid != os.geteuid():
            return False
        req = _read_request(conn)
    except Exception:  # hostile bytes (deep nesting, bad UTF-8, a slow peer): drop them
        return False
    if req is None:
        return False
    if req.get("stop") is True:
        _answer(conn, b"ok stopping\n")
        return True
    refused = _refusal(req, caller, own)
    if refused is not None:
        _answer(conn, refused)
    elif "launch" in req:
        _launch(conn, req, listener, lock_fd)
    else:
        _fork_supervisor(conn, req, listener, lock_fd, supervisor, kept)
    return False


def _answer(conn: _socket.socket, line: bytes) -> None:
    with contextlib.suppress(OSError):  # a caller gone already has nobody to read it
        conn.sendall(line)


def _refusal(req: dict[str, object], caller: int, own: str) -> bytes | None:
    """The line a request is refused with, or None when it is served."""
    launch = "launch" in req
    if not (_well_launch(req) if launch else _well_formed(req)):
        return b"err the session host got a malformed request\n"
    if not same_world(caller):  # a sandboxed or containered caller: never lift its limits
        return b"unavailable the caller sees another filesystem or namespace\n"
    if launch:
        return None
    args = req["args"]
    assert isinstance(args, list)
    if not own or home_id(_root_of(args)) != own:  # another home's: its own host serves it
        return b"unavailable this session host serves another data dir\n"
    return None


def _fork_supervisor(
    conn: _socket.socket,
    req: dict[str, object],
    listener: _socket.socket,
    lock_fd: int,
    supervisor: ModuleType,
    kept: list[object],
) -> None:
    """A session's supervisor, forked from this preloaded host."""
    # Everything that needs no process of its own is done here, before the fork: what the
    # host builds is shared with the supervisor, what the supervisor builds is its own copy.
    args, env = req["args"], req["env"]
    assert isinstance(args, list) and isinstance(env, dict)
    prepared = supervisor.prepare(_with_ready(args, conn.fileno()), env)
    plan = _limit_plan(req.get("limits"), req.get("nice"))
    # Kept (bounded): freeing them now would write the very pages the supervisor shares.
    kept.append((req, prepared, plan))
    del kept[:-KEEP_PREPARED]
    try:
        pid = os.fork()
    except OSError as e:
        _answer(conn, f"err the session host cannot fork: {e.strerror}\n".encode())
        return
    if pid == 0:
        code = 1
        try:
            listener.close()
            os.close(lock_fd)
            code = _child(conn, req, supervisor, prepared, plan)
        finally:
            os._exit(code)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # the intermediate exits as soon as the supervisor is forked


def _root_of(args: list[str]) -> str:
    at = args.index("--") if "--" in args else len(args)
    head = args[:at]
    return head[head.index("--root") + 1] if "--root" in head[:-1] else ""


def _well_launch(req: dict[str, object]) -> bool:
    """A launch asks for a preloaded host and nothing else: this interpreter's sibling
    running one of the two host modules, an environment and an error file."""
    cmd, env, err = req.get("launch"), req.get("env"), req.get("err")
    return (
        isinstance(cmd, list)
        and len(cmd) >= 3
        and all(isinstance(a, str) and "\0" not in a for a in cmd)
        and cmd[0].startswith("/")
        and cmd[1] == "-m"
        and cmd[2] in ("looop.sessions.host", "looop.beathost")
        and "--ready-fd" not in cmd
        and isinstance(err, str)
        and err.startswith("/")
        and "\0" not in err
        and _well_formed({"args": ["--"], "cwd": "/", "env": env, "err": err})
    )


def _launch(
    conn: _socket.socket, req: dict[str, object], listener: _socket.socket, lock_fd: int
) -> None:
    """Start a host for a caller under a session's supervisor: our child's child, adopted by
    whatever adopted us (init), never by that supervisor. Its readiness line goes straight to
    the caller over this connection."""
    cmd, env, err = req["launch"], req["env"], req["err"]
    assert isinstance(cmd, list) and isinstance(env, dict) and isinstance(err, str)
    try:
        pid = os.fork()
    except OSError as e:
        with contextlib.suppress(OSError):
            conn.sendall(f"err the session host cannot fork: {e.strerror}\n".encode())
        return
    if pid == 0:
        try:
            listener.close()
            os.close(lock_fd)
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            fd = conn.detach()
            os.set_inheritable(fd, True)
            null = os.open(os.devnull, os.O_RDWR)
            efd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(efd, 2)
            os.chdir("/")
            os.execve(cmd[0], [*cmd, "--ready-fd", str(fd)], env)
        finally:
            os._exit(127)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _well_formed(req: dict[str, object]) -> bool:
    args, cwd, env, err = req.get("args"), req.get("cwd"), req.get("env"), req.get("err")
    return (
        isinstance(args, list)
        and "--" in args
        and all(isinstance(a, str) and "\0" not in a for a in args)
        and isinstance(cwd, str)
        and "\0" not in cwd
        and isinstance(env, dict)
        and all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
            for k, v in env.items()
        )
        and (err is None or (isinstance(err, str) and "\0" not in err))
    )


def _child(
    conn: _socket.socket,
    req: dict[str, object],
    supervisor: ModuleType,
    prepared: object,
    plan: tuple[list[tuple[int, int, int]], int | None],
) -> int:
    """In the forked intermediate: become the supervisor's parent-to-be, exactly like a
    freshly started supervisor does (new session, fork, the intermediate exits)."""
    args, cwd, env = req["args"], req["cwd"], req["env"]
    assert isinstance(args, list) and isinstance(cwd, str) and isinstance(env, dict)
    fd = conn.detach()  # the supervisor's ready fd: it writes its line and closes it
    err = req.get("err")
    if isinstance(err, str):
        with contextlib.suppress(OSError):
            efd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(efd, 2)
            os.close(efd)
    try:
        os.chdir(cwd)
    except OSError as e:
        os.write(fd, f"err-cwd {e.strerror or e}\n".encode())
        return 1
    umask = req.get("umask")
    if isinstance(umask, int):
        os.umask(umask & 0o777)
    _apply_limits(*plan)
    sid = args[args.index("--id") + 1] if "--id" in args[:-1] else "?"
    _name(f"looop:{sid}")
    if not supervisor.detach(fd):
        return 1
    return int(supervisor.start(prepared))


def _with_ready(args: list[str], fd: int) -> list[str]:
    """Insert `--ready-fd FD` before the `--` that starts the command."""
    at = args.index("--") if "--" in args else len(args)
    return [*args[:at], "--ready-fd", str(fd), *args[at:]]


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
