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

This module is the host process; each request it takes is `hostrequest`'s. Those two alone
load the supervisor. The names both sides share are `hostnames`; the client side (a start
handed over, starting and stopping a host) is `spawner`, which this process never loads.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import socket
import sys
import time

import looop.sessions.supervisor as supervisor
from looop.contract.answering import home_env
from looop.core import cgroup
from looop.core.proctitle import show_role
from looop.core.sameworld import Here
from looop.home import where
from looop.home.anchors import anchor, hold
from looop.home.clock import SystemClock
from looop.home.errors import LooopError
from looop.home.revive import REVIVE_EVERY_S, Keeper, pulse_supervisor, read_wanted
from looop.home.sessionfiles import lock_held, remove_tree, socket_file
from looop.sessions.hostdoor import HostDoor, door_address
from looop.sessions.hostnames import HOST_IDLE_S, home_id, host_socket, options
from looop.sessions.hostrequest import serve_one
from looop.sessions.screen import replay
from looop.sessions.sweep import sweep_all_sockets, sweep_home_sockets

# A host lives while a session of its home does (the pulse's, a worker's: a start from inside
# one is launched by this host, see `launch`); once none does, it exits after
# min(idle, this) unused: a test run's many homes leave no hosts lingering.
HOMELESS_IDLE_S = 10.0


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
    opts = options(argv)[0]
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
        supervisor.say(ready_fd, "ok another host is serving")
        return 0
    home = opts.get("--home", "")
    own = _tidy(base, home)
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
    gc.freeze()
    supervisor.say(ready_fd, f"ok {os.getpid()}")
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
            conn = duties.accept()
            if conn is None:
                continue
            last = time.monotonic()
            try:
                if serve_one(conn, (listener, door), lock_fd, own, here):
                    return 0
            except Exception as e:  # one bad request never ends the host
                sys.stderr.write(f"looop session host: request failed: {e!r}\n")
            finally:
                conn.close()
    finally:
        listener.close()  # the name first, so a new client starts a new host, not queue here
        duties.close()


def _tidy(base: str, home: str) -> str:
    """What gone hosts, killed supervisors and removed homes left; the home's id (none when
    no home is named: the host then serves no supervisor)."""
    sweep(where.runtime_dir(base), base)
    own = home_id(home) if home.startswith("/") else ""
    if own:
        sweep_home_sockets(home)  # what its killed supervisors left
    sweep_all_sockets(time.time())  # what removed homes left, long ago
    return own


def _home_live(home: str) -> bool:
    """Whether a supervisor holds the lock of any session in the data dir `home`."""
    try:
        with os.scandir(os.path.join(home, where.SESSIONS)) as entries:
            return any(e.is_dir(follow_symlinks=False) and lock_held(e.path) for e in entries)
    except OSError:
        return False


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
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):  # another user's, or not a name we made: leave it
        return True
    return True


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

    def accept(self) -> socket.socket | None:
        """The request waiting on the listener; None when it could not be taken (said)."""
        try:
            return self.listener.accept()[0]
        except OSError as e:  # out of descriptors or memory: say so, keep serving
            sys.stderr.write(f"looop session host: accept failed: {e}\n")
            time.sleep(0.05)
            return None

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
