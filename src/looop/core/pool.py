"""Many runs, one loop: a `Pool` reads the pipes and pidfds of any number of processes in
one selector (no thread per process), applies their deadlines and stdout caps, kills a run's
whole group when it must, and says how each ended (`Run.exit`, proc's classifier). Sensors
run here by the hundred, run_shell and `git status` by one or many."""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from looop.core.proc import CHUNK, Exit, Proc, Tail, classify
from looop.core.procstat import kill_group, open_pidfd
from looop.home.clock import Clock

KILL_WAIT_SECS = 2.0  # a SIGKILLed run that still has not exited is given up as lost
POLL_SECS = 0.05  # exit polling, only where the OS has no pidfd
KILL_READS = 16  # chunks read per pipe after a kill: a writer that escaped may never stop


@dataclass(eq=False)
class Run:
    """One process in a Pool and what its loop saw."""

    proc: Proc
    deadline: float | None  # the clock's monotonic time; None runs without one
    out: Tail
    err: Tail
    cap: int = 0  # stdout bytes past which it is killed as oversize; 0 means no cap
    label: str = ""  # the caller's name for it
    token: str = ""  # its containment marker
    started: float = 0.0  # the clock's monotonic time, for the reported duration
    pidfd: int | None = None
    pipes: dict[int, IO[bytes]] = field(default_factory=dict)
    returncode: int | None = None
    exited_at: float | None = None
    killed_at: float | None = None
    why: str | None = None  # timeout | oversize | orphan | lost

    @property
    def done(self) -> bool:
        return self.returncode is not None and not self.pipes

    def exit(self) -> Exit:
        why = self.why
        return classify(
            self.returncode,
            timed_out=why == "timeout",
            oversize=why == "oversize",
            lost=why == "lost",
        )


class _Watch:
    """Readable-fd waiting for Pool: raw epoll where there is one (a beat registers three
    descriptors per sensor; the selectors wrapper costs more than the system calls), the
    selectors module elsewhere."""

    def __init__(self) -> None:
        self.data: dict[int, Run] = {}
        epoll = getattr(select, "epoll", None)
        self.ep = epoll() if epoll is not None else None
        self.sel: selectors.BaseSelector | None = None
        self.readable = 0
        if self.ep is None:
            self.sel = selectors.DefaultSelector()
            self.readable = selectors.EVENT_READ

    def register(self, fd: int, run: Run) -> None:
        if self.ep is not None:
            self.ep.register(fd, select.EPOLLIN)
        else:
            assert self.sel is not None
            self.sel.register(fd, self.readable)
        self.data[fd] = run

    def unregister(self, fd: int) -> None:
        if self.data.pop(fd, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError, OSError):
            if self.ep is not None:
                self.ep.unregister(fd)
            elif self.sel is not None:
                self.sel.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, Run]]:
        """(fd, run) for each ready descriptor; [] when the timeout passed."""
        if self.ep is not None:
            # epoll's timeout is in seconds, -1 for none; a negative wait means now
            secs = -1.0 if timeout is None else max(0.0, timeout)
            try:
                events = self.ep.poll(secs, max(1, len(self.data)))
            except InterruptedError:
                return []
            ready = [fd for fd, _ in events]
        else:
            assert self.sel is not None
            ready = [key.fd for key, _ in self.sel.select(timeout)]
        return [(fd, self.data[fd]) for fd in ready if fd in self.data]

    def close(self) -> None:
        self.data.clear()
        if self.ep is not None:
            self.ep.close()
        if self.sel is not None:
            self.sel.close()


class Pool:
    """One selector over every run's pipes (and pidfds): no thread per process.

    A run ends when it has exited and its pipes are closed. Once it exits, children it left
    may hold its pipes for `grace` seconds; then its group is killed (`kill_orphans`, the
    `orphan` verdict) or its pipes are simply let go. A deadline or the stdout cap SIGKILLs
    the group and keeps what is already in the pipes.
    """

    def __init__(self, clock: Clock, grace: float, *, kill_orphans: bool = True) -> None:
        self.clock = clock
        self.grace = grace
        self.kill_orphans = kill_orphans
        self.sel = _Watch()
        self.live: list[Run] = []

    def add(self, run: Run) -> None:
        for f in (run.proc.stdout, run.proc.stderr):
            if f is None:
                continue
            fd = f.fileno()
            os.set_blocking(fd, False)
            run.pipes[fd] = f
            self.sel.register(fd, run)
        run.pidfd = open_pidfd(run.proc.pid)
        if run.pidfd is not None:
            self.sel.register(run.pidfd, run)
        self.live.append(run)

    def pause(self, secs: float) -> None:
        """Wait a moment (used only while none of ours is running: nothing to read)."""
        self.sel.wait(secs)

    def finished(self) -> Iterator[Run]:
        """Yield each run as it completes."""
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Run]]:
        """Yield the runs that completed together, one list per pass over the pipes (a
        caller that sweeps for escapees does it once per list, not once per run)."""
        while self.live:
            now = self.clock.monotonic()
            wait: float | None = None
            done: list[Run] = []
            for run in list(self.live):
                step = self._tend(run, now)
                if run.done:
                    self._forget(run)
                    done.append(run)
                elif step is not None:
                    wait = step if wait is None else min(wait, step)
            if done:
                gone = set(done)
                self.live = [r for r in self.live if r not in gone]
                yield done
                continue  # the caller may have started more: tend those before waiting
            if not self.live:
                break
            for fd, run in self.sel.wait(wait):
                if fd == run.pidfd:
                    self._reap(run)
                    if run.returncode is None:
                        self._close_pidfd(run)  # should not happen: fall back to polling
                elif fd in run.pipes:
                    self._read(run, fd)

    def _tend(self, run: Run, now: float) -> float | None:
        """Apply timers to one run; the seconds until its next timer, or None."""
        if run.returncode is None and (run.pidfd is None or run.killed_at is not None):
            self._reap(run)
        if run.returncode is not None:
            if not run.pipes:
                return None
            assert run.exited_at is not None
            end = run.exited_at + self.grace
            if now < end:
                return end - now
            if self.kill_orphans:
                self.kill(run, "orphan")
            else:
                run.why = run.why or "orphan"
                for fd in list(run.pipes):
                    self._close_pipe(run, fd)
            return None
        if run.killed_at is not None:
            give_up = run.killed_at + KILL_WAIT_SECS
            if now >= give_up:
                run.why = run.why or "lost"
                run.returncode = -signal.SIGKILL
                return None
            return min(POLL_SECS, give_up - now)
        if run.deadline is not None and now >= run.deadline:
            self.kill(run, "timeout")
            return POLL_SECS
        step = run.deadline - now if run.deadline is not None else None
        if run.pidfd is None:
            step = POLL_SECS if step is None else min(step, POLL_SECS)
        return step

    def _reap(self, run: Run) -> None:
        rc = run.proc.poll()
        if rc is None:
            return
        run.returncode = rc
        run.exited_at = self.clock.monotonic()
        self._close_pidfd(run)

    def _read(self, run: Run, fd: int) -> int:
        """Read one chunk: its size, 0 once the pipe is finished, -1 when nothing is ready."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return -1
        except OSError:
            data = b""
        if not data:
            self._close_pipe(run, fd)
            return 0
        if run.pipes[fd] is run.proc.stderr:
            run.err.add(data)
            return len(data)
        run.out.add(data)
        if run.cap and run.out.seen > run.cap:
            run.out.clear()  # a flood must fill neither memory nor disk
            if run.killed_at is None:
                self.kill(run, "oversize")
        return len(data)

    def kill(self, run: Run, why: str) -> None:
        """SIGKILL the whole group, keep what is already in the pipes, stop reading."""
        if run.why is None:
            run.why = why
        kill_group(run.proc.pid)
        if run.killed_at is None:
            run.killed_at = self.clock.monotonic()
        for fd in list(run.pipes):
            for _ in range(KILL_READS):
                if fd not in run.pipes or self._read(run, fd) <= 0:
                    break
            self._close_pipe(run, fd)

    def _close_pipe(self, run: Run, fd: int) -> None:
        f = run.pipes.pop(fd, None)
        if f is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fd)
        f.close()

    def _close_pidfd(self, run: Run) -> None:
        if run.pidfd is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(run.pidfd)
        os.close(run.pidfd)
        run.pidfd = None

    def _forget(self, run: Run) -> None:
        for fd in list(run.pipes):
            self._close_pipe(run, fd)
        self._close_pidfd(run)

    def abandon(self) -> None:
        """On the way out (normal or an interrupt): nothing still running outlives the loop."""
        for run in self.live:
            if run.returncode is None:
                self.kill(run, "lost")
                with contextlib.suppress(subprocess.TimeoutExpired, TimeoutError):
                    run.proc.wait(timeout=KILL_WAIT_SECS)
            self._forget(run)
        self.live.clear()
        self.sel.close()
