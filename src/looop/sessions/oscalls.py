"""The OS calls a session's lifecycle makes, behind one seam.

`HostOS` is the real thing (a child on a fresh PTY, process-group signals, reaping, the
window size, the PTY reader on the loop). The lifecycle makes no OS call but through it, so
a unit test drives the state machine with a fake one and no PTY at all. Beside it, what the
supervisor judges a run by from outside: the watchdog's heartbeat (`HeartWatch`, a file the
run rewrites with the seconds until its next sign) and the memory its process trees hold where
no cgroup bounds them (`resident`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import termios
from time import monotonic
from typing import TYPE_CHECKING, Any

from looop.core import cgroup, limits, procstat
from looop.core.procstat import alive_not_looop, children
from looop.home.where import program_on

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.evloop import Loop


_DEFAULTED = "HUP INT QUIT TERM CHLD PIPE ALRM XFSZ TSTP TTIN TTOU USR1 USR2 WINCH"  # in a child
_RESET_SIGNALS = [s for n in _DEFAULTED.split() if (s := getattr(signal, f"SIG{n}", 0))]
PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int]:
    """libc's prctl, resolved once at import: in the session host, so a forked supervisor
    calls it without building ctypes objects of its own."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return lambda *_a: -1


_PRCTL = _prctl()


def winsize(cols: int, rows: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


# What looop's own long-lived processes call themselves (core/procstat.py): a supervisor
# `looop:<id>`, a host `looop-host`, `looop-beat` (and its `looop-tick`/`looop-start`), the
# sandbox's network filter `looop-netfilter`. A bare `looop` is the CLI a run may have left
# behind: a leftover like any other.
def set_subreaper() -> None:
    """Orphaned descendants come back to us, so a killed group can be confirmed empty even
    where pid 1 does not reap zombies (containers)."""
    with contextlib.suppress(Exception):
        _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class HostOS:
    """The real OS. `env` is the child's environment (the supervisor's own, read once)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)  # built once (in the session host, before the fork)
        self.env.setdefault("TERM", "xterm-256color")
        self.group: cgroup.Group | None = None  # None: the subreaper sweep alone contains …
        self.sweeping = False  # … once `contain` ran (a host's rehearsal never does)
        self.unbounded: list[str] = []  # the bounds asked for that no cgroup holds
        self.nproc = 0  # the process bound RLIMIT_NPROC holds instead, at each spawn
        self.memory_watch = 0  # the memory bound its supervisor samples instead (memory_check)
        self.memory_hit = False  # … and ended a run for
        self.before = {limits.PIDS: 0, limits.MEMORY: 0}  # its bounds' hits before the run
        self.bounds = (0, 0)  # processes, bytes (0: none)
        # False: the child opens the PTY as nobody's controlling terminal, for a waiter inside
        # a sandbox to take (sandbox/boxwait.pl): a session on the host holding it would
        # keep it from the box
        self.ctty = True

    def contain(self, name: str, pids: int = 0, memory: int = 0) -> str:
        """Leave a run's group this process was born in, then make the session's own, bounded
        to `pids` processes and `memory` bytes (0: none; `unbounded` names what no cgroup
        holds): what contains its runs, `cgroup` or `sweep` (orphans adopted by this
        subreaper)."""
        cgroup.escape()
        self.bounds = (pids, memory)
        # LOOOP_NO_CGROUP=1 (the caller's env): the sweep alone, as where none can be made
        self.group = None if self.env.get("LOOOP_NO_CGROUP") == "1" else cgroup.make(name)
        self.sweeping = True
        self.unbounded = limits.bound(self.group, name, pids, memory)
        if limits.PIDS in self.unbounded and os.getuid() != 0:  # root passes RLIMIT_NPROC by
            self.unbounded.remove(limits.PIDS)
            self.nproc = pids  # set in the supervisor at each spawn, never in this host
        if limits.MEMORY in self.unbounded:  # sampled by the supervisor (supervisor.memory_check)
            self.unbounded.remove(limits.MEMORY)
            self.memory_watch = memory
        if self.group is not None:  # a reused group's counts are not this run's
            self.before = {c: limits.hits(self.group, c) for c in self.before}
        return "cgroup" if self.group is not None else "sweep"

    def name_bound(self, status: dict[str, object]) -> None:
        """An ended run's status names the bound the kernel held it at (ls, needs, status):
        its memory, or its processes when it failed once a fork was refused."""
        failed = status.get("state") == "killed" or status.get("exit_code") not in (0, None)
        if self.hit(limits.MEMORY):
            mib = self.bounds[1] >> 20
            status.update(limit="memory", error=f"hit its memory limit ({mib} MiB): it was killed")
        elif failed and self.hit(limits.PIDS):
            n = self.bounds[0]
            status.update(limit="pids", error=f"hit its process limit ({n}): a fork failed")

    def hit(self, controller: str) -> bool:
        """Whether the kernel held the run at that bound (memory: killed it, or the
        supervisor's sample did where no cgroup holds it; processes: refused a fork)."""
        if controller == limits.MEMORY and self.memory_hit:
            return True
        g = self.group
        return g is not None and limits.hits(g, controller) > self.before[controller]

    def contained(self, spare: set[int]) -> list[int]:
        """The processes still alive that a run started (but those in `spare`)."""
        if not self.sweeping:
            return []
        left = {p for p in children() if p not in spare and alive_not_looop(p)}
        if self.group is not None:
            left.update(p for p in self.group.live() if p not in spare)
        return sorted(left)

    def contain_kill(self, spare: set[int]) -> None:
        """SIGKILL them (not waiting: `contained` says when they are gone)."""
        if self.group is not None and not spare:
            self.group.kill()
        for pid in self.contained(spare):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def spawn(self, argv: list[str], cols: int, rows: int) -> tuple[int, int]:
        """Start `argv` on a fresh PTY as leader of its own group: (pid, non-blocking master).
        Raises OSError when it cannot run."""
        # In for the spawn and out again: the child is born inside, so nothing it forks can
        # race a move (a pid written after the spawn lost that race under load).
        group = self.group
        if group is not None and not group.enter():
            group = None
        # counted now (a restart is bounded from what runs then), for the child alone
        was = limits.nproc_bound(self.nproc) if self.nproc > 0 else None
        try:
            return self._spawn(argv, cols, rows)
        finally:
            if was is not None:
                limits.nproc_restore(was)
            if group is not None:
                group.leave()

    def _spawn(self, argv: list[str], cols: int, rows: int) -> tuple[int, int]:
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize(cols, rows))
            pid = self._spawn_light(argv, slave, self.env, self.ctty)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # else the master never sees EOF when the child exits
        os.set_blocking(master, False)
        return pid, master

    @staticmethod
    def _spawn_light(argv: list[str], slave: int, env: dict[str, str], ctty: bool = True) -> int:
        """posix_spawn (vfork, no Python between fork and exec; subprocess never loads in a
        supervisor): a new session whose controlling terminal is the PTY (the session leader
        opens the slave by name, so it becomes its terminal; with O_NOCTTY when `ctty` is
        False), default signals, an empty mask. Every descriptor of ours is close-on-exec, as
        Python makes them."""
        path = os.ttyname(slave)
        program = argv[0]
        if not os.path.dirname(program):  # a bare name: PATH from the child's env, as Popen
            found = program_on(program, env.get("PATH", os.defpath))
            if found is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
            program = found
        return os.posix_spawn(
            program,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, path, os.O_RDWR | (0 if ctty else os.O_NOCTTY), 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
            setsid=True,
            setsigmask=(),
            setsigdef=_RESET_SIGNALS,
        )

    @staticmethod
    def reap_one() -> tuple[int, int] | None:
        """One ended child as (pid, wait status) without blocking; None when there is none."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            except InterruptedError:
                continue
            if pid == 0:
                return None
            return pid, status

    def pidfd_open(self, pid: int) -> int:
        """A descriptor readable when `pid` ends, or -1 (SIGCHLD still reports it)."""
        try:
            return os.pidfd_open(pid)
        except (OSError, AttributeError):
            return -1

    def close(self, fd: int) -> None:
        os.close(fd)

    def killpg(self, pgid: int, sig: int) -> None:
        """Signal a process group; a group already gone is not an error."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def group_gone(self, pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def resize(self, master: int, cols: int, rows: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(master, termios.TIOCSWINSZ, winsize(cols, rows))

    def start_reader(
        self,
        master: int,
        loop: Loop,
        deliver: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> PtyReader:
        return PtyReader(master, loop, deliver, done)


# A Linux PTY hands out at most 4 KiB per read; a batch is this many reads in a row, taken
# on in one piece (one log write, one backlog entry, one screen push per batch).
READ_SIZE = 4096
READ_BATCH = 64
# In a burst (a batch already this big) an empty PTY is refilled by the writer within
# moments: the reader waits for it right there, up to BURST_WAIT_MS at a time and BATCH_S in
# all, instead of going back round the loop for every 4 KiB. A trickle (an echo, a repaint)
# never waits. BATCH_S is also the longest the loop is held by one batch.
BURST_MIN = 16 * 1024
BURST_WAIT_MS = 2
BATCH_S = 0.005


class PtyReader:
    """Reads a child's PTY master on the loop; `deliver` gets each batch, `done` runs once
    after the last byte (EOF, or EIO once every slave fd is closed)."""

    def __init__(
        self,
        master: int,
        loop: Loop,
        deliver: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> None:
        self.master = master
        self.loop = loop
        self.deliver = deliver
        self.done = done
        self.finished = False  # `done` was called
        self.reading = True
        self.poller: Any = None  # made at the first burst (a select.poll on the master)
        loop.add_reader(master, self._readable)

    def _refilled(self, deadline: float) -> bool:
        """In a burst: wait (briefly) until the PTY has more, True when it has."""
        wait_ms = min(BURST_WAIT_MS, int((deadline - monotonic()) * 1000))
        if wait_ms <= 0:
            return False
        poller = self.poller
        if poller is None:
            poller = self.poller = select.poll()
            poller.register(self.master, select.POLLIN)
        return bool(poller.poll(wait_ms))

    def _readable(self) -> None:
        master, read = self.master, os.read
        parts: list[bytes] = []
        size = 0
        eof = False
        deadline = 0.0
        for _ in range(READ_BATCH):
            try:
                data = read(master, READ_SIZE)
            except BlockingIOError:
                if size < BURST_MIN:
                    break
                if not deadline:
                    deadline = monotonic() + BATCH_S
                if not self._refilled(deadline):
                    break
                continue
            except InterruptedError:
                continue
            except OSError:  # EIO: every slave fd is closed
                data = b""
            if not data:
                eof = True
                break
            parts.append(data)
            size += len(data)
        if parts:
            self.deliver(parts[0] if len(parts) == 1 else b"".join(parts))
        if eof and self.reading:
            self.stop()
            self.finished = True
            self.done()

    def stop(self) -> bool:
        """Stop reading (the master is about to close). Always True: nothing to wait for."""
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.master)
        return True


MAX_PROMISE_S = 7 * 86400.0
SIGN_BYTES = 128  # a heartbeat's text is one short line


class HeartWatch:
    """Judges one session's runs: `begin` at each run's start, `late` on every check."""

    def __init__(self, path: str, grace: float, clock: Callable[[], float]) -> None:
        self.path = path
        self.grace = grace
        self.clock = clock
        self.sign: bytes | None = None  # the text last seen
        self.seen_at = clock()  # when it last changed (or the run began)
        self.promise = 0.0  # seconds the run said its next sign may take

    def read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                return f.read(SIGN_BYTES)
        except OSError:
            return None  # not there (yet, or its dir was wiped): no sign, no harm

    def begin(self) -> None:
        """A new run: the run before's last sign is not this one's; it owes its first soon."""
        self.sign, self.seen_at, self.promise = self.read(), self.clock(), 0.0

    def late(self) -> float | None:
        """Seconds since the last sign of life, when past its promise plus the grace."""
        now = self.clock()
        sign = self.read()
        if sign is not None and sign != self.sign:
            self.sign, self.seen_at = sign, now
            self.promise = _promise(sign)
        quiet = now - self.seen_at
        return quiet if quiet > self.promise + self.grace else None

    def next_look(self, floor: float) -> float:
        """Seconds until the run can first be late (its promise plus the grace, from when its
        sign was last seen), so the watchdog sleeps until then instead of polling; never
        past one grace (a new run is judged from about its start), never under `floor`."""
        due = self.seen_at + self.promise + self.grace - self.clock()
        return max(floor, min(due, max(self.grace, floor)))


def _promise(sign: bytes) -> float:
    """The first word of the sign: seconds until the next (0 when unreadable)."""
    word = sign.split(None, 1)[0] if sign.strip() else b"0"
    try:
        value = float(word)
    except ValueError:
        return 0.0
    if value != value:  # NaN
        return 0.0
    return max(0.0, min(value, MAX_PROMISE_S))


MEMORY_CHECK_S = 2.0  # an idle fleet wakes seldom: one short walk of each run's tree
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident(roots: list[int]) -> int:
    """Bytes resident in every process of the trees under `roots` (each counted once)."""
    seen: set[int] = set()
    total = 0
    for root in roots:
        for pid in procstat.tree(root):
            if pid in seen:
                continue
            seen.add(pid)
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * _PAGE
            except (OSError, ValueError, IndexError):
                continue
    return total
