"""The contract door of a home's local workers, served by its session host (sessions/host.py)
on an abstract unix name of the home, `door-<key>` beside the host's own (home/anchors.py).

A worker the host started (its supervisor forked here) has the name in LOOOP_DOOR; its
`$LOOOP_BIN claim …` knocks here (remote/boxdoor.py) instead of writing the data dir. The
caller is known by the channel: the kernel's pid of the connecting process (SO_PEERCRED),
whose parents must lead to the supervisor of the worker the request speaks for — that
supervisor's pid the kernel gives too, as the listener of the session's control socket. A
process under another worker's supervisor, or under none, is refused (403, one line).

The plain verbs are answered here, in the host, once by key (contract/answering.py); the rest
(`ask` waiting on a human, `kill`) run as the home's `looop` in a session of their own, the
host holding the caller's connection without a thread until the answer is on file or
HOLD_S passes (202: ask again with the same key).

Wire: the request (contract protocol 1, one JSON line); the answer `STATUS JSON\\n`, then
the host closes. Only `os`, `select`, `_socket` and the hot room: every supervisor shares the host's
pages."""

from __future__ import annotations

import contextlib
import os
import select
import socket
from typing import TYPE_CHECKING, Any

from looop.contract.answering import (
    BUSY,
    MAX_STARTS,
    Refusal,
    Request,
    answer_here,
    check,
    end_entry_run,
    ended,
    entry,
    opened,
    refused,
    spawn_run,
    starts_of,
    store_answer,
    stored,
)
from looop.contract.verbs import BOX_VERBS
from looop.core.procstat import stat_fields
from looop.home import locks
from looop.home.anchors import anchor, shown
from looop.home.jsonio import dumps, loads
from looop.home.peers import holder, peer
from looop.home.sessionfiles import socket_file, valid_id
from looop.sessions.protocol import read_reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.evloop import Loop

    Home = tuple[str, dict[str, str], tuple[str, ...]]  # data dir, environment, `looop` argv


REQUEST_MAX = 512 << 10  # the arguments and stdin (64 KiB each) as JSON, with room to spare
DRAIN_MAX = 8 << 20  # what an oversized request's rest is read of, at most, before the close
TOO_BIG = object()
READ_S = 2.0  # a caller says its request at once: the host serves starts in the same loop
HOLD_S = 25.0  # a held call is answered 202 after this long (the caller asks again)
CHECK_S = 5.0  # how often a held run asks whether its worker still lives
TICK_S = 0.25  # how often held calls are looked at
MAX_HELD = 256
MAX_DEPTH = 64  # parents walked from a caller up to its supervisor


def door_address(base: str, key: str) -> str:
    """The abstract name of the door of the host of `key` (the host's own, `host-<key>`)."""
    return anchor(base, f"door-{key}")


def parent_of(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc; None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 20 or not fields[1].isdigit():
        return None
    return int(fields[1]), fields[19].decode()


def descends(pid: int, ancestor: int) -> bool:
    """Whether `ancestor` is `pid` or one of its parents."""
    for _ in range(MAX_DEPTH):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        got = parent_of(pid)
        if got is None:
            return False
        pid = got[0]
    return False


class Held:
    """A call waiting on a run's answer; `pid` the run we started (None: another's)."""

    __slots__ = ("checked", "conn", "d", "pid", "req", "since")

    def __init__(self, conn: socket.socket, req: Request, d: str, pid: int | None, t: float):
        self.conn, self.req, self.d, self.pid = conn, req, d, pid
        self.since = self.checked = t


class HostDoor:
    """The door: `serve_one` for a connection the host's loop accepted, `tick` for the held
    calls. `home`: (data dir, the home's environment, its `looop`)."""

    def __init__(self, address: str, home: Home, clock: Callable[[], float], bind: bool = True):
        self.address, self.home, self.clock = address, home, clock
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if bind:
            self.bind()
        self.held: list[Held] = []
        self.supervisors: dict[str, tuple[int, str]] = {}  # worker -> (pid, start time)
        self.runs: set[int] = set()  # the runs started here, not yet reaped
        # each run's pidfd in the host's wait: its end (its answer on file) is told at once
        self.waiting: select.poll | None = None
        self.pidfds: dict[int, int] = {}

    def bind(self) -> None:
        self.listener.bind(self.address)
        self.listener.listen(128)

    def named(self) -> str:
        """The name a worker's LOOOP_DOOR holds (`@…`: an environment holds no NUL)."""
        return shown(self.address)

    def close(self) -> None:
        """Let go of the door (a forked child does: it must not hold the name open)."""
        self.listener.close()
        for h in self.held:
            h.conn.close()
        self.forget_runs()

    def forget_runs(self) -> None:
        for fd in self.pidfds.values():
            os.close(fd)
        self.pidfds.clear()

    def timeout(self, idle: float) -> float:
        return min(idle, TICK_S) if self.held or self.runs else idle

    # -- who calls ----------------------------------------------------------------------------

    def supervisor(self, worker: str) -> int | None:
        """The pid of `worker`'s supervisor while it runs, as the kernel says (the listener
        of its control socket); remembered with its start time, so a reused pid is not it."""
        known = self.supervisors.get(worker)
        if known is not None:
            got = parent_of(known[0])
            if got is not None and got[1] == known[1]:
                return known[0]
            del self.supervisors[worker]
        if not valid_id(worker):
            return None
        pid = holder(socket_file(self.home[0], worker))
        got = parent_of(pid) if pid is not None and pid > 1 else None
        if pid is None or got is None:
            return None
        self.supervisors[worker] = (pid, got[1])
        return pid

    def allowed_for(self, caller: int) -> Callable[[str], str | None]:
        def allowed(worker: str) -> str | None:
            sup = self.supervisor(worker)
            if sup is None:
                return f"worker {worker} is not running here: its door is shut"
            if caller and not descends(caller, sup):
                return f"this process is not one of worker {worker}'s: it speaks for itself only"
            return None

        return allowed

    # -- one call -------------------------------------------------------------------------------

    def serve_one(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            kept = self._call(conn)
        except Exception as e:  # one bad call never ends the host
            kept = False
            _say(conn, 500, {"error": f"the door failed: {e!r}"[:300]})
        if not kept:
            conn.close()

    def _call(self, conn: socket.socket) -> bool:
        """Answer one call; True when it is held (waits on a run)."""
        pid, uid = peer(conn)
        if uid != os.geteuid() or pid <= 0:  # another user's, or from a namespace we cannot see
            _say(conn, 403, {"error": "this door answers its own home's workers only"})
            return False
        raw = _read(conn)
        if raw is TOO_BIG:
            _say(conn, 413, {"error": f"a request is one line of at most {REQUEST_MAX >> 10} KiB"})
            _drain(conn)  # read what it still sends, so it reads the answer rather than a reset
            return False
        if raw is None:
            _say(conn, 400, {"error": "the door takes one JSON line (contract protocol 1)"})
            return False
        try:
            req = check(raw, BOX_VERBS, self.allowed_for(pid), self_only=True)
        except Refusal as e:
            _say(conn, e.status, {"error": e.message})
            return False
        data, env, _ = self.home
        got = answer_here(req, data, env, self.clock())
        if isinstance(got, dict):
            _say(conn, 200, got)
            return False
        return self._run(conn, req, got == BUSY)

    def _run(self, conn: socket.socket, req: Request, busy: bool) -> bool:
        """A verb answered by a run of the home's `looop`: its stored answer, or the call
        held on the run (started now, or another's still going)."""
        d = opened(self.home[0], req) if not busy else entry(self.home[0], req)
        got = stored(d)
        if got is not None:
            _say(conn, 200, got)
            return False
        if len(self.held) >= MAX_HELD:
            _say(conn, 429, {"error": "the door holds too many calls: ask again"})
            return False
        fd = None if busy else locks.try_flock(os.path.join(d, "lock"))
        pid = None
        if fd is not None:
            try:
                starts = starts_of(d)
                if starts >= MAX_STARTS:
                    cut = refused(f"the home's run of `{req.argv[0]}` was cut {starts} times", 75)
                    _say(conn, 200, store_answer(d, cut))
                    return False
                pid = spawn_run(req, d, fd, starts, self.home, self.clock())
                self.runs.add(pid)
                self._watch_run(pid)
            finally:
                os.close(fd)  # the run holds the flock on
        self.held.append(Held(conn, req, d, pid, self.clock()))
        return True

    def _watch_run(self, pid: int) -> None:
        if self.waiting is None:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already, or no pidfd here: the next tick sees it
            return
        self.pidfds[pid] = fd
        self.waiting.register(fd, select.POLLIN)

    # -- held calls ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Answer the held calls whose run has answered, ended or waited HOLD_S; end the
        runs of workers gone."""
        now = self.clock()
        self.runs = {pid for pid in self.runs if not ended(pid)}
        for pid in [p for p in self.pidfds if p not in self.runs]:
            fd = self.pidfds.pop(pid)
            if self.waiting is not None:
                self.waiting.unregister(fd)
            os.close(fd)
        keep: list[Held] = []
        for h in self.held:
            if self._settled(h, now):
                h.conn.close()
            else:
                keep.append(h)
        self.held = keep

    def _settled(self, h: Held, now: float) -> bool:
        over = h.pid is not None and h.pid not in self.runs
        got = stored(h.d)
        if got is not None:
            _say(h.conn, 200, got)
            return True
        if now - h.checked >= CHECK_S:
            h.checked = now
            why = self.allowed_for(0)(h.req.worker)
            if why is not None:
                if h.pid is not None and not over:
                    with contextlib.suppress(OSError):
                        os.killpg(h.pid, 15)  # reaped by the next tick
                else:  # a call asked again (after a 202, a host's restart): the run goes too
                    end_entry_run(h.d)
                _say(h.conn, 200, store_answer(h.d, refused(why, 3)))
                return True
        if over or now - h.since >= HOLD_S or not locks.flock_held(os.path.join(h.d, "lock")):
            _say(h.conn, 202, {"pending": True})  # ask again: a cut run is started again
            return True
        return False


def _read(conn: socket.socket) -> Any:
    conn.settimeout(READ_S)
    try:
        buf = read_reply(conn, REQUEST_MAX)
    except ValueError:
        return TOO_BIG
    except OSError:
        return None
    try:
        return loads(buf.split(b"\n", 1)[0].decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def _drain(conn: socket.socket) -> None:
    left = DRAIN_MAX
    with contextlib.suppress(OSError):
        while left > 0 and (chunk := conn.recv(65536)):
            left -= len(chunk)


def _say(conn: socket.socket, status: int, body: dict[str, Any]) -> None:
    with contextlib.suppress(OSError, ValueError):  # a caller gone has nobody to read it
        conn.settimeout(READ_S)
        conn.sendall(f"{status} ".encode() + dumps(body).encode() + b"\n")


class SoleDoor(HostDoor):
    """The host's door, for the one worker `sid` this process supervises; bound by `arm`, in
    the supervisor itself (not in a keeper forked before it, which would hold the name on)."""

    def __init__(self, address: str, home: Home, clock: Callable[[], float], sid: str) -> None:
        super().__init__(address, home, clock, bind=False)
        self.sid = sid
        self.ticking = False

    def supervisor(self, worker: str) -> int | None:
        return os.getpid() if worker == self.sid else None

    def allowed_for(self, caller: int) -> Callable[[str], str | None]:
        mine = super().allowed_for(caller)

        def allowed(worker: str) -> str | None:
            if worker != self.sid:  # another worker's door is its own supervisor's
                return f"this process is not one of worker {worker}'s: it speaks for itself only"
            return mine(worker)

        return allowed

    def arm(self, loop: Loop) -> None:
        """Bind, and serve calls on the supervisor's loop; held ones looked at each TICK_S
        while any."""
        self.bind()

        def serve() -> None:
            self.serve_one()
            later()

        def tick() -> None:
            self.ticking = False
            self.tick()
            later()

        def later() -> None:
            if not self.ticking and (self.held or self.runs):
                self.ticking = True
                loop.call_later(TICK_S, tick)

        loop.add_reader(self.listener.fileno(), serve)
