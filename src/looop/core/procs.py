"""Containment: no descendant of a sensor or a run_shell command outlives it.

The kernel tool is PR_SET_CHILD_SUBREAPER. While a `Containment` is open this process is a
subreaper, so a descendant that detaches (setsid, double fork, a new process group, closed
stdout) is re-parented to us when its parent dies, instead of to init: our own children list
is where escapees land, and no system-wide /proc scan is ever needed. Each run carries a
marker in its environment (LOOOP_CONTAIN=<token>, inherited by every descendant; one that
clears its environment is still known by the session its run leads); an adopted child whose
marker names a run that has ended is SIGKILLed and reaped. Being its parent, we know its pid
cannot be recycled under us. Its own children are then adopted in turn, and the
sweep repeats until nothing marked is left.

The subreaper is on only while a Containment is open (sensors, one run_shell), so the worker
supervisors that start_worker double-forks later are adopted by init as before — never by us,
never killed, never our zombies. A zombie child that was started inside the window (an
escapee that died on its own) is reaped; earlier children belong to whoever started them.

Where a cgroup can be made (core/cgroup: root, or a delegated subtree), each run is also
started inside a cgroup of its own, and its end kills the whole group: that catches what the
marker cannot, a descendant that both clears its environment and leaves the session
(env -i setsid …). Without one that descendant cannot be attributed and is left alone.

Linux only; elsewhere (or if prctl fails) `active` is False and the caller says so once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import select
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from looop.core import cgroup
from looop.core.procstat import await_pid, children, stat_of
from looop.home.clock import Clock

MARK = cgroup.MARK
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
SWEEP_ROUNDS = 64  # each round kills one generation; a fork bomb cannot keep us forever
KILL_WAIT_SECS = 2.0  # a SIGKILLed escapee that still has not died is left (stuck in the kernel)
UNCONTAINED = (
    "process containment is unavailable here (needs Linux prctl PR_SET_CHILD_SUBREAPER); "
    "background processes left by sensors or run_shell may outlive them"
)


@functools.cache
def libc_prctl() -> Callable[..., int]:
    """libc's prctl, resolved once per process: a CDLL made per call builds a new ctypes
    function type each time, cyclic garbage that grew a long-lived pulse three times a beat.
    Where there is none, a stand-in that fails as prctl does (-1)."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda *_a: -1
    return prctl


def _prctl(option: int, arg: int) -> int | None:
    """prctl(2) through libc, or None where it does not exist or fails."""
    try:
        prctl = libc_prctl()
        if option == PR_GET_CHILD_SUBREAPER:
            flag = ctypes.c_int(0)
            if prctl(option, ctypes.byref(flag), 0, 0, 0) != 0:
                return None
            return int(flag.value)
        return None if prctl(option, arg, 0, 0, 0) != 0 else 0
    except (OSError, AttributeError):
        return None


def marker_of(pid: int) -> str | None:
    """The LOOOP_CONTAIN token in a process's environment, or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    key = MARK.encode() + b"="
    for entry in env.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key) :].decode("utf-8", "replace")
    return None


def _reap(pid: int) -> bool:
    """Collect one child's exit status if it has one; True once it is gone."""
    try:
        got, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return got == pid


def _owner(pid: int, tokens: list[str]) -> str:
    """Which of a shared group's runs left `pid`: its marker's, or "" (it cleared it)."""
    mark = marker_of(pid)
    return mark if mark in tokens else ""


class Containment:
    """One window of containment: open it, mark runs, sweep as they end, close it."""

    def __init__(self, clock: Clock, shared: bool = False, pen: cgroup.Pen | None = None) -> None:
        self.clock = clock
        self.pen = pen if shared else None  # shared: the pen, when the caller keeps one
        self.penned = False  # this process entered the pen for this window's runs
        # shared: one cgroup for every run of the window (a beat's sensors), killed once all
        # of them ended — one group and two moves per batch of spawns, not per run
        self.shared = shared
        self.batching = False  # inside batch(): stay in the group between spawns
        self.inside: cgroup.Group | None = None  # the run group this process sits in now
        self.prefix = f"{os.getpid()}.{os.urandom(4).hex()}"  # not secrets: hmac costs a beat
        self.count = 0
        self.live: dict[str, int] = {}  # token -> pid, for runs still going
        self.leaders: dict[int, str] = {}  # pid -> token of every run (each leads a session)
        self.floor: int | None = None  # start time of the first process started in the window
        self.active = False
        self.was_on = False
        self.groups: dict[str, cgroup.Group] = {}  # token -> the run's cgroup, where made
        self.cgroups = True  # False: never try (the first refusal says none can be made)
        self.self_cgroup: str | None = None  # /proc/self/cgroup, read once

    def __enter__(self) -> Containment:
        before = _prctl(PR_GET_CHILD_SUBREAPER, 0)
        self.was_on = bool(before)
        if before is not None:
            self.active = self.was_on or _prctl(PR_SET_CHILD_SUBREAPER, 1) is not None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def token(self) -> str:
        self.count += 1
        return f"{self.prefix}.{self.count}"

    def env(self, base: Mapping[str, str], token: str) -> dict[str, str]:
        return {**base, MARK: token}

    def enter(self, token: str) -> None:
        """Just before the run's spawn: into a cgroup of its own (the window's one, when
        shared), so it is born there."""
        if not self.cgroups:
            return
        if self.pen is not None:  # in it it stays: what it spawns next, not a run, leaves first
            pen = self.pen.group if self.penned else self.pen.enter()
            self.penned = pen is not None  # only runs are spawned until the window ends
            if pen is not None:
                self.groups[token] = pen
                return
        group = next(iter(self.groups.values()), None) if self.shared else None
        if group is None:
            if self.self_cgroup is None:
                with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
                    self.self_cgroup = f.read()
            name = "all" if self.shared else token.rsplit(".", 1)[-1]
            group = cgroup.make(f"run-{self.prefix}.{name}", cgroup.BASE, self.self_cgroup or "")
        if group is None or (self.inside is not group and not group.enter()):
            self.cgroups = False
            if group is not None and not any(g is group for g in self.groups.values()):
                group.remove()
            return
        self.inside = group
        self.groups[token] = group

    def leave(self, token: str) -> None:
        """Just after the spawn (or its failure): this process goes home (at the batch's
        end, inside one)."""
        if not self.batching:
            self._go_home()

    def _go_home(self) -> None:
        if self.inside is not None:
            self.inside.leave()
            self.inside = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Spawns in a row: this process stays in the shared group between them and goes
        home once, at the end (nothing but the runs may be started inside)."""
        self.batching = True
        try:
            yield
        finally:
            self.batching = False
            self._go_home()

    def started(self, token: str, pid: int) -> None:
        self.live[token] = pid
        self.leaders[pid] = token
        if self.floor is None:
            st = stat_of(pid)
            self.floor = st[3] if st else None

    def ended(self, token: str) -> None:
        self.live.pop(token, None)

    def sweep(self) -> dict[str, int]:
        """Kill every adopted descendant of an ended run; how many, per run token."""
        killed: dict[int, str] = {}
        until = self.clock.monotonic() + KILL_WAIT_SECS
        self._end_groups(killed, until)
        if not self.active:
            return dict(Counter(killed.values()))
        for _ in range(SWEEP_ROUNDS):
            victims = self._victims()
            if not victims:
                break
            for pid, token in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed[pid] = token
            for pid, _ in victims:
                await_pid(pid, functools.partial(_reap, pid), self.clock, until)  # reaped
        return dict(Counter(killed.values()))

    def _end_groups(self, killed: dict[int, str], until: float) -> None:
        """Kill the cgroup of every run that ended (all it started, however it left) and
        remove it once empty; one that will not empty is kept for the next sweep. A shared
        group ends once every run in it ended; what it held is told by its marker."""
        runs: dict[int, tuple[cgroup.Group, list[str]]] = {}
        for token, group in self.groups.items():
            runs.setdefault(id(group), (group, []))[1].append(token)
        for group, tokens in runs.values():
            if group is self.inside or any(t in self.live for t in tokens):
                continue
            if self.pen is not None and group is self.pen.group:
                if not self.pen.others():
                    for token in tokens:
                        del self.groups[token]
                    continue
                self.pen.drop()  # something was left: out, and the group ends as any other
                self.penned = False
            left = group.live()
            for pid in left:
                killed[pid] = tokens[0] if len(tokens) == 1 else _owner(pid, tokens)
            while left and self.clock.monotonic() < until:
                group.kill()
                select.select([], [], [], 0.002)  # they die within microseconds of SIGKILL
                left = group.live()
            for pid in group.pids():
                _reap(pid)  # adopted by us (a subreaper) and dead: collect it
            if not left and group.remove():
                for token in tokens:
                    del self.groups[token]

    def _victims(self) -> list[tuple[int, str]]:
        skip = set(self.live.values())
        out: list[tuple[int, str]] = []
        for pid in children():
            if pid in skip:
                continue
            st = stat_of(pid)
            if st is None:
                continue
            state, _, session, start = st
            if state in ("Z", "X"):
                # Started inside the window: an escapee that died on its own. Earlier
                # children (a notification hook's) are waited for by their own owner.
                if self.floor is not None and start >= self.floor:
                    _reap(pid)
                continue
            # The marker, or else (its environment was cleared) the session of our run.
            mark = marker_of(pid) or self.leaders.get(session)
            if mark is not None and mark.startswith(self.prefix) and mark not in self.live:
                out.append((pid, mark))
        return out

    def close(self) -> dict[str, int]:
        """Every run has ended: nothing marked survives; the subreaper goes back off."""
        self.live.clear()
        try:
            return self.sweep()
        finally:
            if self.active and not self.was_on:
                _prctl(PR_SET_CHILD_SUBREAPER, 0)
            self.active = False
