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

A host serves one home: its socket is named by the build and the data dir (see
`hostnames.home_key`), it refuses a supervisor for any other data dir, and its environment is
the one its home's first spawn gave it, so nothing of one home's environment reaches another's
supervisors.

A host is never started under a session's supervisor (a subreaper: it would adopt the host and
every supervisor the host forks). A spawn from inside a worker asks the host that forked that
worker's supervisor to start the new host (`launch`), so it hangs off init like the first;
with no such host it starts its supervisor directly.

Wire: the client connects to the abstract name `@looop-<uid>-<runtime dir's hash>-host-<key>`
(home/anchors.py: no file a tmp cleaner could take; each side checks the other's uid), sends one
JSON line {"args", "cwd", "env", "umask", "err"} and reads one line back on the same
connection: the supervisor's own readiness line (`ok PID` / `err …`), or the host's `err …`
when it could not fork (`unavailable …`: start it directly). `key` names the interpreter, the
code and the home, so a host never serves a session with code older than the caller's.

The host also serves its home's contract door for the workers it started (LOOOP_DOOR, on
the abstract name `door-<key>`): their contract verbs, answered in this one thread between
requests (sessions/hostdoor.py), and keeps its home's pulse (home/revive.py): it holds a
pidfd of the pulse's supervisor, whose exit wakes it at once.

This module is the host process, the only one that loads the supervisor. The names both sides
share are `hostnames`; the client side (`request`, starting and stopping a host) is
`hostclient`, which this process never loads.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import select
import socket
import sys
import time
from types import ModuleType

import looop.sessions.supervisor as supervisor
from looop.contract.answering import home_env
from looop.core import cgroup
from looop.core.proctitle import show_role
from looop.core.sameworld import Here, same_world
from looop.home import where
from looop.home.anchors import anchor, hold, shown
from looop.home.clock import SystemClock
from looop.home.errors import LooopError
from looop.home.peers import LIMITS, peer
from looop.home.revive import REVIVE_EVERY_S, Keeper, pulse_supervisor, read_wanted
from looop.home.sessionfiles import lock_held, socket_file
from looop.sessions.hostdoor import HostDoor, door_address
from looop.sessions.hostnames import HOST_IDLE_S, home_id, host_options, host_socket
from looop.sessions.protocol import read_reply, reply_of
from looop.sessions.screen import replay
from looop.sessions.sweep import sweep_all_sockets, sweep_home_sockets

# A host lives while a session of its home does (the pulse's, a worker's: a start from inside
# one is launched by this host, see `launch`); once none does, it exits after
# min(idle, this) unused: a test run's many homes leave no hosts lingering.
HOMELESS_IDLE_S = 10.0
REQUEST_MAX = 4 * 1024 * 1024
KEEP_PREPARED = 256  # requests whose objects the host keeps at most (see _fork_supervisor)


def _warm(base: str, rounds: int = 10) -> None:
    """Run once in the host what every supervisor runs, so what CPython builds lazily (the
    specialised bytecode of each function it runs, module caches, the emulator's first
    screen) is built here and shared, instead of being written into every forked
    supervisor's own pages."""
    replay(b"\x1b[1mwarm\x1b[0m\r\n", 80, 24)
    root = os.path.join(where.runtime_dir(base), f"rehearsal-{os.getpid()}")
    env = {"PATH": os.defpath}
    try:
        for i in range(rounds):  # a whole short session: start, serve, child exit, finish
            args = supervisor.Args(["--id", f"r{i}", "--root", root, "--", "true"])
            sup = supervisor.Supervisor(args, env)
            sup.subreaper = False  # the host must never adopt its supervisors' orphans
            sup.run()
    except Exception as e:  # a rehearsal that fails costs memory, never the host
        sys.stderr.write(f"looop session host: rehearsal failed: {e!r}\n")
    finally:
        remove_tree(root)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(socket_file(root, "r0")))


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
    opts = host_options(argv)
    key, base = opts.get("--key", ""), opts.get("--base", "/tmp")
    idle_s = float(opts.get("--idle-s", str(HOST_IDLE_S)))
    ready_fd = int(opts["--ready-fd"]) if opts.get("--ready-fd", "").isdigit() else None
    if os.getsid(0) != os.getpid():  # started by hand; the spawner already made a session
        os.setsid()
    if os.fork() > 0:  # the starter waits for this intermediate; the host is adopted by init
        os._exit(0)
    cgroup.escape()  # started from a worker's run (the pulse's): never killed with that run
    lock_fd = hold(anchor(base, f"host-{key}.lock"))  # its guard: one host of a key
    if lock_fd is None:
        say(ready_fd, "ok another host is serving")
        return 0
    sweep(where.runtime_dir(base), base)
    home = opts.get("--home", "")
    own = home_id(home) if home.startswith("/") else ""  # no home: serve no supervisor
    if own:
        sweep_home_sockets(home)  # what its killed supervisors left
    sweep_all_sockets(time.time())  # what removed homes left, long ago
    show_role(f"looop: session host {home}", "looop-host")
    here = Here()  # the host's own world, read once: each request reads its caller's
    path = host_socket(key, base)  # an abstract name: only the guard's holder binds it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    door = open_door(base, key, home) if own else None
    _warm(base)
    gc.collect()
    fillers = _fill_pools()
    kept: list[tuple[str, object]] = []
    gc.freeze()
    say(ready_fd, f"ok {os.getpid()}")
    supervisor.detach_stdio()
    homeless = min(idle_s, HOMELESS_IDLE_S)
    duties = Duties(listener, door, pulse_keeper(home), homeless)
    del fillers[:0]  # (kept alive to the end of serve: see _fill_pools)
    last = time.monotonic()
    try:
        while True:
            if duties.tend():
                last = time.monotonic()  # the revived pulse's supervisor is forked here next
            if not duties.next_request():
                # with a live session at home a start from inside it needs us (a host started
                # there is launched from here): stay; with none, go once unused that long
                if not duties.busy and time.monotonic() - last >= homeless and not _home_live(home):
                    return 0
                continue
            try:
                conn = listener.accept()[0]
            except OSError as e:  # out of descriptors or memory: say so, keep serving
                sys.stderr.write(f"looop session host: accept failed: {e}\n")
                time.sleep(0.05)
                continue
            last = time.monotonic()
            try:
                if _serve_one(conn, (listener, door), lock_fd, supervisor, kept, own, here):
                    return 0
            except Exception as e:  # one bad request never ends the host
                sys.stderr.write(f"looop session host: request failed: {e!r}\n")
            finally:
                conn.close()
    finally:
        listener.close()  # the name first, so a new client starts a new host, not queue here
        duties.close()


def _let_go(held: tuple[socket.socket, HostDoor | None]) -> None:
    """In a forked child: close the host's listeners, whose names must die with the host."""
    held[0].close()
    if held[1] is not None:
        held[1].close()


def _home_live(home: str) -> bool:
    """Whether a supervisor holds the lock of any session in the data dir `home`."""
    try:
        with os.scandir(os.path.join(home, where.SESSIONS)) as entries:
            return any(e.is_dir(follow_symlinks=False) and lock_held(e.path) for e in entries)
    except OSError:
        return False


def _read_request(conn: socket.socket) -> dict[str, object] | None:
    conn.settimeout(5.0)
    buf = read_reply(conn, REQUEST_MAX)
    return reply_of(buf) if b"\n" in buf else None


def _serve_one(
    conn: socket.socket,
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
    supervisor: ModuleType,
    kept: list[tuple[str, object]],
    own: str,
    here: Here,
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
    refused = _refusal(req, caller, own, here)
    if refused is not None:
        _answer(conn, refused)
    elif "launch" in req:
        _launch(conn, req, held, lock_fd)
    else:
        _fork_supervisor(conn, req, held, lock_fd, supervisor, kept)
    return False


def _answer(conn: socket.socket, line: bytes) -> None:
    with contextlib.suppress(OSError):  # a caller gone already has nobody to read it
        conn.sendall(line)


def _refusal(req: dict[str, object], caller: int, own: str, here: Here) -> bytes | None:
    """The line a request is refused with, or None when it is served."""
    launch = "launch" in req
    if not (_well_launch(req) if launch else _well_formed(req)):
        return b"err the session host got a malformed request\n"
    if not same_world(caller, here):  # a sandboxed or containered caller: never lift its limits
        return b"unavailable the caller sees another filesystem or namespace\n"
    if launch:
        return None
    args = req["args"]
    assert isinstance(args, list)
    if not own or home_id(_flag(args, "--root")) != own:  # another home's: its own host serves it
        return b"unavailable this session host serves another data dir\n"
    return None


def _fork_supervisor(
    conn: socket.socket,
    req: dict[str, object],
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
    supervisor: ModuleType,
    kept: list[tuple[str, object]],
) -> None:
    """A session's supervisor, forked from this preloaded host."""
    # Everything that needs no process of its own is done here, before the fork: what the
    # host builds is shared with the supervisor, what the supervisor builds is its own copy.
    args, env, cwd = req["args"], req["env"], req["cwd"]
    assert isinstance(args, list) and isinstance(env, dict) and isinstance(cwd, str)
    if not os.path.isdir(cwd):  # before `prepare` makes its cgroup, which nothing would end
        why = "Not a directory" if os.path.exists(cwd) else "No such file or directory"
        _answer(conn, f"err-cwd {why}\n".encode())
        return
    door = held[1]
    sid = _flag(args, "--id")
    # a worker's session: its contract verbs knock on this home's door (sessions/hostdoor.py);
    # a sandboxed worker's box has its own (LOOOP_DOOR=1)
    if (
        door is not None
        and sid
        and env.get("LOOOP_SESSION_ID") == sid
        and not env.get("LOOOP_DOOR")
    ):
        env["LOOOP_DOOR"] = door.named()
    prepared = supervisor.prepare(_with_ready(args, conn.fileno()), env)
    plan = limit_plan(req.get("limits"), req.get("nice"))
    # Kept while their session lives: freeing them now would write the very pages its
    # supervisor shares. An ended session's are let go, so a host starting and ending
    # workers for weeks stays flat (~19 kB a start was kept before).
    _let_go_ended(kept)
    kept.append((str(prepared.sdir), (req, prepared, plan)))
    del kept[:-KEEP_PREPARED]
    host = shown(held[0].getsockname().decode("utf-8", "replace"))
    try:
        pid = os.fork()
    except OSError as e:
        _answer(conn, f"err the session host cannot fork: {e.strerror}\n".encode())
        return
    if pid == 0:
        code = 1
        try:
            _let_go(held)
            os.close(lock_fd)
            code = _child(conn, req, supervisor, prepared, plan, host)
        finally:
            os._exit(code)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # the intermediate exits as soon as the supervisor is forked


def _let_go_ended(kept: list[tuple[str, object]]) -> None:
    """Drop what the host kept for sessions (by folder) whose supervisor no longer holds
    their lock: an ended session shares no pages worth keeping."""
    kept[:] = [k for k in kept if lock_held(k[0])]


def _flag(args: list[str], name: str) -> str:
    """A supervisor request's `name` flag (in the args before the command's `--`)."""
    head = args[: args.index("--")] if "--" in args else args
    return head[head.index(name) + 1] if name in head[:-1] else ""


def _well_launch(req: dict[str, object]) -> bool:
    """A launch asks for a preloaded host and nothing else: this interpreter's sibling
    running the host module, an environment and an error file."""
    cmd, env, err = req.get("launch"), req.get("env"), req.get("err")
    return (
        isinstance(cmd, list)
        and len(cmd) >= 3
        and all(isinstance(a, str) and "\0" not in a for a in cmd)
        and cmd[0].startswith("/")
        and cmd[1] == "-m"
        and cmd[2] == "looop.sessions.host"
        and "--ready-fd" not in cmd
        and isinstance(err, str)
        and err.startswith("/")
        and "\0" not in err
        and _well_formed({"args": ["--"], "cwd": "/", "env": env, "err": err})
    )


def _launch(
    conn: socket.socket,
    req: dict[str, object],
    held: tuple[socket.socket, HostDoor | None],
    lock_fd: int,
) -> None:
    """Start a host for a caller under a session's supervisor: our child's child, adopted by
    whatever adopted us (init), never by that supervisor. Its readiness line goes straight to
    the caller over this connection."""
    cmd, env, err = req["launch"], req["env"], req["err"]
    assert isinstance(cmd, list) and isinstance(env, dict) and isinstance(err, str)
    try:
        pid = os.fork()
    except OSError as e:
        _answer(conn, f"err the session host cannot fork: {e.strerror}\n".encode())
        return
    if pid == 0:
        try:
            _let_go(held)
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
    conn: socket.socket,
    req: dict[str, object],
    supervisor: ModuleType,
    prepared: object,
    plan: tuple[list[tuple[int, int, int]], int | None],
    host: str,
) -> int:
    """In the forked intermediate: become the supervisor's parent-to-be, exactly like a
    freshly started supervisor does (new session, fork, the intermediate exits). Its title
    names the host that forked it: a start from inside its run asks that host (hostclient)."""
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
    apply_limits(*plan)
    sid = _flag(args, "--id") or "?"
    show_role(f"looop: supervisor {sid} (host {host})", f"looop:{sid}")
    if not supervisor.detach(fd):
        return 1
    return int(supervisor.start(prepared))


def _with_ready(args: list[str], fd: int) -> list[str]:
    """Insert `--ready-fd FD` before the `--` that starts the command."""
    at = args.index("--") if "--" in args else len(args)
    return [*args[:at], "--ready-fd", str(fd), *args[at:]]


# -- what a preloaded host does to start and to stay -----------------------------------------


def sweep(hdir: str, base: str) -> None:
    """What gone hosts left in the runtime dir (homes removed, crashes): an empty error file
    whose host's guard nobody holds (one with words says why it died), a rehearsal dir whose
    process is dead. A live host's is never touched: the sweeper takes its guard first."""
    try:
        names = os.listdir(hdir)
    except OSError:
        return
    for name in names:
        path = os.path.join(hdir, name)
        if name.startswith("rehearsal-") and not _alive(name[10:]):
            remove_tree(path)
        elif name.startswith("host-") and name.endswith(".err"):
            guard = hold(anchor(base, f"{name[:-4]}.lock"))
            if guard is None:
                continue  # a live host's (this one's own among them)
            with contextlib.suppress(OSError):
                if os.stat(path).st_size == 0:
                    os.unlink(path)
            os.close(guard)


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


def remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) for the rehearsal's own few files, without
    shutil and the compression modules it loads into the host."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                remove_tree(e.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def limit_plan(limits: object, nice: object) -> tuple[list[tuple[int, int, int]], int | None]:
    """In the host, before the fork: which of the caller's limits (and nice value) differ
    from the host's own, so the forked supervisor only sets those (lowering is always
    allowed; a limit the host cannot raise stays the host's)."""
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


def apply_limits(plan: list[tuple[int, int, int]], nice: int | None) -> None:
    """In the forked supervisor: what `limit_plan` found different."""
    if plan:
        for which, soft, hard in plan:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (soft, hard))
    if nice is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def say(fd: int | None, line: str) -> None:
    """A preloaded host's readiness line to its starter (who may no longer wait for it)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


# -- between requests: its home's door and its pulse ----------------------------------------

RESYNC_S = 30.0  # a look at the pulse with nothing to tell (no pidfd, or none wanted)


def open_door(base: str, key: str, home: str) -> HostDoor | None:
    """The contract door of the home's local workers; None, said, when its name is taken
    (a host of this key serving it already exits soon)."""
    looop = (sys.executable, "-m", "looop")  # this build's, whatever LOOOP_BIN names
    try:
        return HostDoor(door_address(base, key), (home, home_env(os.environ), looop), time.time)
    except OSError as e:
        sys.stderr.write(f"looop session host: no door for its workers: {e}\n")
        return None


def pulse_keeper(home: str) -> Keeper | None:
    """The host outlives the supervisors it forks: when the pulse's dies (an OOM kill, a
    stray kill -9) while `up` still wants it, the host brings it back, with no verb needed.
    Its environment is its home's (see the module's docstring)."""
    if not home.startswith("/"):
        return None
    env = dict(os.environ)
    try:
        _, config = where.resolve({**env, "LOOOP_DATA_DIR": home}, "/")
    except LooopError:
        return None
    return Keeper(home, config, env, SystemClock(), REVIVE_EVERY_S)


class Duties:
    """The host's wait for its next request, with its door and its pulse kept meanwhile."""

    def __init__(
        self, listener: socket.socket, door: HostDoor | None, keeper: Keeper | None, idle_s: float
    ) -> None:
        self.listener, self.door, self.keeper = listener, door, keeper
        self.idle_s = self.wait_s = idle_s
        self.pulse_fd: int | None = None  # a pidfd of the pulse's supervisor: its exit wakes
        os.register_at_fork(after_in_child=self.let_go)  # a forked supervisor holds none
        self.waiting = select.poll()
        self.waiting.register(listener.fileno(), select.POLLIN)
        if door is not None:
            self.waiting.register(door.listener.fileno(), select.POLLIN)
            door.waiting = self.waiting

    @property
    def busy(self) -> bool:
        """A worker's call is held at the door or its run goes on: the host must stay."""
        return self.door is not None and bool(self.door.held or self.door.runs)

    def tend(self) -> bool:
        """Whether the pulse was brought back just now (its supervisor is forked here next)."""
        if self.keeper is None:
            return False
        try:
            started = self.keeper.tend()
            self.follow(self.keeper)
            return started
        except Exception as e:  # a failed look never ends the host: the next one tries again
            sys.stderr.write(f"looop session host: pulse check failed: {e!r}\n")
            self.wait_s = min(self.idle_s, REVIVE_EVERY_S)
            return False

    def follow(self, keeper: Keeper) -> None:
        """Hold a pidfd of the pulse's supervisor, and say how long to wait until the next look."""
        if self.pulse_fd is None:
            pid = pulse_supervisor(keeper.data)
            if pid is not None:
                try:
                    fd = os.pidfd_open(pid)
                except OSError:  # gone already (looked at next), or no pidfd on this kernel
                    fd = None
                if fd is not None and pulse_supervisor(keeper.data) != pid:
                    os.close(fd)  # it ended between the two reads: not a stranger's pid
                    fd = None
                if fd is not None:
                    self.pulse_fd = fd
                    self.waiting.register(fd, select.POLLIN)
        if self.pulse_fd is not None or read_wanted(keeper.data) is None:
            self.wait_s = min(self.idle_s, RESYNC_S)
        else:  # wanted, and nothing to tell of a loss: look again soon (a revival backing off)
            self.wait_s = min(self.idle_s, REVIVE_EVERY_S)

    def let_go(self) -> None:
        if self.door is not None:
            self.door.forget_runs()
        if self.pulse_fd is not None:
            os.close(self.pulse_fd)
            self.pulse_fd = None

    def pulse_ended(self) -> None:
        """The pulse's supervisor exited: drop its pidfd and look now."""
        if self.pulse_fd is not None:
            self.waiting.unregister(self.pulse_fd)
            os.close(self.pulse_fd)
            self.pulse_fd = None
        if self.keeper is not None:
            self.keeper.checked = None

    def next_request(self) -> bool:
        """Wait, serving the door's calls: True when a request waits on the listener, False
        when the wait (or a door's tick) passed first."""
        door = self.door
        wait = door.timeout(self.wait_s) if door is not None else self.wait_s
        ready = {fd for fd, _ in self.waiting.poll(wait * 1000)}
        if self.pulse_fd is not None and self.pulse_fd in ready:
            self.pulse_ended()
        if door is not None:
            if door.listener.fileno() in ready:
                door.serve_one()
            door.tick()
        return self.listener.fileno() in ready

    def close(self) -> None:
        self.pulse_ended()
        if self.door is not None:
            self.door.close()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
