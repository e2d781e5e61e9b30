"""A session's lifecycle: start, child exit, terminate, kill, restart, finish.

Every state change goes through the `StatusBook` (states.py); every OS call through the
`HostOS` seam (oscalls.py), so `tests/unit/sessions/test_supervisor_states.py` drives all of
this with a fake OS. Everything here runs on the supervisor's loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from looop.core.procstat import reads_terminal
from looop.home.screenrules import prompt
from looop.home.store import read_regular
from looop.home.textsafe import strip_ansi
from looop.sessions import protocol as proto
from looop.sessions.evloop import Event, Lock, log, sleep, within
from looop.sessions.states import SessionState

# Looked up once: identity tests need no hashing and no enum machinery on the loop.
_STARTING, _RUNNING = SessionState.STARTING, SessionState.RUNNING
_EXITED, _KILLED = SessionState.EXITED, SessionState.KILLED

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from looop.sessions.evloop import Future, Loop, Task
    from looop.sessions.oscalls import HostOS, PtyReader
    from looop.sessions.pump import Pump
    from looop.sessions.states import StatusBook

HUP_GRACE_S = 0.3  # SIGHUP → SIGKILL escalation
KILL_WAIT_S = 2.0  # after SIGKILL: for the child, then for its group
DRAIN_QUIET_S = 0.5  # end of the post-exit drain: this long without output …
DRAIN_CAP_S = 5.0  # … or this long in total (a grandchild may keep the PTY busy)
POLL_S = 0.01  # how often terminate looks whether the group is gone


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}" if n else "a signal"


class OpError(Exception):
    """A request the supervisor refuses; the message goes back to the caller verbatim."""


def why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class Lifecycle:
    """The current child and the moves between states.

    `farewell(end_frame)` is awaited once the terminal status is written: the control side
    sends EXIT frames and lets its connections end. `final` resolves with that status.
    """

    def __init__(
        self,
        sid: str,
        argv: list[str],
        book: StatusBook,
        pump: Pump,
        host: HostOS,
        loop: Loop,
        farewell: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self.sid = sid
        self.argv = argv
        self.book = book
        self.pump = pump
        self.os = host
        self.loop = loop
        self.farewell = farewell
        self.child: Child | None = None
        self.children: dict[int, Child] = {}  # spawned and not yet reaped, by pid
        self.finishing = False
        self.restarting = False
        self.end_reason: str | None = None
        # restart on failure (exit code != 0 or a signal we did not send): (first delay, cap)
        self.restart_policy: tuple[float, float] | None = None
        self.final_exit: int | None = None  # a run that exits with it is over, not failed
        self.restarts = 0  # automatic restarts of this session, ever
        self.streak = 0  # failures in a row (a run that lived past the cap resets it)
        self.cause: str | None = None  # why the next exit happens (the watchdog says)
        self.stopping = Event(loop)  # a kill op or a signal: no automatic restart any more
        self.started_at = loop.time()  # of the current run
        self.end_note: str | None = None  # where the child may say which signal ended it
        self.lock = Lock(loop)  # one kill/restart at a time
        self.sweep_wait = KILL_WAIT_S  # how long leftovers may take to die of SIGKILL
        self.final: Future = loop.future()  # the terminal status (a dict)
        self.done = Event(loop)
        self.tasks: set[Task] = set()
        book.listeners.append(self._settled)
        pump.mark.quiet = self.quiet

    def quiet(self, hushed: bool) -> None:
        """Output went quiet (or came again): what the screen asks while it is quiet goes in
        status.json, where every face reads it (views/needsinput) and the pulse is woken."""
        said, child = None, self.child
        # a run that printed nothing has no screen to ask from, and makes none (its memory)
        drawn = self.pump.emu is not None
        if hushed and drawn and child is not None and not child.done and not self.finishing:
            text = self.pump.render("plain", True).get("text")
            said = prompt(text, reads_terminal(child.pid)) if isinstance(text, str) else None
        if said != self.book.status.get("prompt"):
            self.book.update(prompt=said)

    def _settled(self, old: SessionState, new: SessionState, status: dict[str, Any]) -> None:
        if (new is _EXITED or new is _KILLED) and not self.final.done() and not self.loop.closed:
            self.final.set_result(status)

    def task(self, coro: Coroutine[Any, Any, Any]) -> Task:
        return self.loop.kept(coro, self.tasks, "a session task")

    @property
    def accepts_input(self) -> bool:
        c = self.child
        return not self.finishing and c is not None and not c.done and c.master >= 0

    # ---- start
    def start(self) -> Child | str:
        """STARTING → RUNNING with a child, or → EXITED with the reason it could not run."""
        try:
            child = self.spawn()
        except OSError as e:
            reason = f"cannot run `{self.argv[0]}`: {why(e)}"
            self.book.change_state(_EXITED, exit_code=None, error=reason)
            return reason
        self.book.change_state(_RUNNING, child_pid=child.pid)
        return child

    def spawn(self) -> Child:
        pid, master = self.os.spawn(self.argv, self.pump.cols, self.pump.rows)
        child = Child(pid, master, self.loop)
        self.child = child
        self.children[pid] = child
        child.pidfd = self.os.pidfd_open(pid)
        if child.pidfd >= 0:
            self.loop.add_reader(child.pidfd, self.reap)
        child.reader = self.os.start_reader(
            master, self.loop, lambda data: self._output(child, data), child.eof.set
        )
        self.pump.use_master(master)
        self.started_at = self.loop.time()
        self.task(self.watch(child))
        self.reap()  # it may already be gone
        return child

    def _output(self, child: Child, data: bytes) -> None:
        if child is self.child:  # else a restarted run's last words: dropped, as before
            self.pump.ingest(data)

    # ---- child exit
    def reap(self) -> None:
        while (ended := self.os.reap_one()) is not None:
            pid, status = ended
            child = self.children.pop(pid, None)
            if child is not None:  # else an adopted orphan: reaping it is all we owe it
                self._child_gone(child, status)

    def _child_gone(self, child: Child, status: int) -> None:
        if child.pidfd >= 0:
            self.loop.remove_reader(child.pidfd)
            self.os.close(child.pidfd)
            child.pidfd = -1
        child.set_wait_status(status)

    async def watch(self, child: Child) -> None:
        await child.exited
        if self.restarting or child is not self.child or self.finishing:
            return
        # the watchdog's kill is a failure whatever the run exits with (a pulse ends its
        # beat on SIGHUP and exits 0): like systemd's watchdog timeout, it restarts
        judged = self.cause is not None
        failed = judged or child.signaled or child.escalated or child.code != 0
        final = not judged and not child.signaled and not child.escalated
        final = final and child.code == self.final_exit
        if self.restart_policy is not None and failed and not final and not self.stopping.is_set():
            await self.respawn(child)
            return
        await self.finish(child)

    def last_words(self) -> str:
        """The run's last non-blank output line, plain and short (for `last_cause`)."""
        tail = b"".join(list(self.pump.backlog)[-4:])[-4096:]
        for raw in reversed(tail.replace(b"\r", b"\n").split(b"\n")):
            text = raw.decode("utf-8", "replace")
            text = "".join(c for c in strip_ansi(text) if c.isprintable()).strip()
            if text:
                return text[:200]
        return ""

    def exit_cause(self, child: Child) -> str:
        if self.cause is not None:
            what = self.cause
        elif child.signaled or child.code is None:
            what = f"killed by {_signame(child.signal or 0)}"
        else:
            what = f"exit {child.code}"
        words = self.last_words()
        return f"{what}: {words}" if words else what

    async def respawn(self, child: Child) -> None:
        """Restart on failure: wait the backoff (a kill cuts it short and ends the session),
        then a new run. Like systemd's Restart=on-failure with a growing RestartSec."""
        assert self.restart_policy is not None
        first, cap = self.restart_policy
        if self.loop.time() - self.started_at >= max(cap, first):
            self.streak = 0  # it ran long enough: the next delay starts small again
        delay = min(cap, first * (2 ** min(self.streak, 30)))
        self.streak += 1
        self.restarts += 1
        cause, self.cause = self.exit_cause(child), None
        await self.drain(child, 0.2, 1.0)
        self.close_child_fds(child)
        self.book.update(
            child_pid=None,
            exit_code=child.code,
            signaled=child.signaled,
            restarts=self.restarts,
            last_cause=cause,
            restart_in_s=round(delay, 3),
        )
        log(f"restarting in {delay:g}s after {cause}")
        if await within(self.loop, self.stopping.wait(), delay):
            await self.finish(child)
            return
        self.pump.new_screen()
        try:
            new = self.spawn()
        except OSError as e:
            await self.finish(child, error=f"restart failed: cannot run `{self.argv[0]}`: {why(e)}")
            return
        self.book.change_state(
            _RUNNING, child_pid=new.pid, exit_code=None, signaled=False, restart_in_s=None
        )

    def watchdog_kill(self, cause: str) -> None:
        """The run stopped making progress: end it as a failure, so it restarts."""
        child = self.child
        if child is None or child.done or self.finishing or self.stopping.is_set():
            return
        self.cause = cause
        self.task(self.terminate(child))

    def close_child_fds(self, child: Child) -> None:
        if child.master < 0:
            return
        self.pump.release_master(child.master)
        reader, child.reader = child.reader, None
        if reader is not None:
            reader.stop()
        self.os.close(child.master)  # hangs up the PTY: stragglers in its group get SIGHUP
        child.master = -1

    # ---- terminate / finish
    async def _until(self, cond: Callable[[], bool], timeout: float) -> bool:
        deadline = self.loop.time() + timeout
        while not cond():
            if self.loop.time() >= deadline:
                return False
            await sleep(self.loop, POLL_S)
        return True

    async def terminate(self, child: Child) -> tuple[bool, bool]:
        """SIGHUP the group; after 300 ms SIGKILL it. (confirmed gone, escalated)."""
        pgid = child.pid

        def gone() -> bool:
            return child.done and self.os.group_gone(pgid)

        self.os.killpg(pgid, signal.SIGHUP)
        deadline = self.loop.time() + HUP_GRACE_S
        await within(self.loop, child.exited, HUP_GRACE_S)  # woken by the exit, not a poll tick
        if await self._until(gone, max(0.0, deadline - self.loop.time())):
            return True, False
        child.escalated = True
        self.os.killpg(pgid, signal.SIGKILL)
        child_ok = await self._until(lambda: child.done, KILL_WAIT_S)
        group_ok = await self._until(lambda: self.os.group_gone(pgid), KILL_WAIT_S)
        return child_ok and group_ok, True

    async def sweep(self) -> int:
        """Kill what the run left behind (a setsid daemon, a double fork, an `env -i` child):
        its cgroup, else the orphans this subreaper adopted. How many are still alive."""
        spare = {pid for pid, c in self.children.items() if not c.done}
        deadline = self.loop.time() + self.sweep_wait
        while left := self.os.contained(spare):
            if self.loop.time() >= deadline:
                log(f"{len(left)} process(es) of the run outlived SIGKILL: {left[:8]}")
                return len(left)
            self.os.contain_kill(spare)  # again each round: a fork caught mid-way, a generation
            await sleep(self.loop, POLL_S)
        return 0

    async def drain(self, child: Child, quiet: float, cap: float) -> None:
        """Read what is left until EOF, `quiet` seconds of silence or `cap` in total."""
        start = self.loop.time()
        while not child.eof.is_set():
            now = self.loop.time()
            silent = now - max(self.pump.last_output, start)
            left = min(quiet - silent, cap - (now - start))
            if left <= 0:
                return
            await within(self.loop, child.eof.wait(), left)

    async def finish(self, child: Child, error: str | None = None) -> None:
        """Child gone: drain → terminal status → farewell (EXIT frames, connections) → done."""
        if self.finishing:
            return
        self.finishing = True
        await child.exited
        await self.drain(child, DRAIN_QUIET_S, DRAIN_CAP_S)
        self.close_child_fds(child)
        survivors = await self.sweep()  # systemd's KillMode=control-group: the run ends whole
        self.pump.stop_feeding()
        self.pump.output_ended()
        noted = signal_in_note(self.end_note, child.code) if self.end_note else None
        if noted is not None and not child.signaled:
            child.signaled, child.signal, child.code = True, noted, None
        killed = child.signaled or child.escalated
        self.book.change_state(
            _KILLED if killed else _EXITED,
            child_pid=None,
            exit_code=child.code,
            signaled=child.signaled,
            survivors=survivors,
            signal=child.signal,
            error=error or self.end_reason or self.pump.log_error,
        )
        await self.farewell(proto.exit_frame(killed, child.code))
        self.done.set()

    async def abort_start(self, child: Child, reason: str) -> None:
        """RUNNING → KILLED before the session was ever served (its socket would not bind)."""
        self.finishing = True
        await self.terminate(child)
        self.close_child_fds(child)
        self.book.change_state(_KILLED, child_pid=None, exit_code=1, error=reason)

    # ---- lifecycle ops
    def _live_child(self, refusal: str) -> Child:
        child = self.child
        if self.book.state is _STARTING:
            raise OpError(f"session {self.sid} has not started yet")
        if self.finishing or child is None or child.done:
            raise OpError(refusal)
        return child

    async def kill(self, reason: str | None = None) -> dict[str, Any]:
        self.stopping.set()
        child = self.child
        between = self.restart_policy is not None and not self.finishing and self.book.live
        if child is not None and child.done and between:  # waiting out a restart delay
            self.end_reason = reason
            await within(self.loop, self.final, DRAIN_CAP_S + 5)
            return _killed(dict(self.book.status), {"confirmed": True, "escalated": False})
        async with self.lock:
            child = self._live_child(f"session {self.sid} has already finished")
            self.end_reason = reason
            confirmed, escalated = await self.terminate(child)
            survivors = await self.sweep()
        if await within(self.loop, self.final, DRAIN_CAP_S + 5):
            status = self.final.result()
        else:
            status = dict(self.book.status)  # an unkillable child: report what we know
        how = {"confirmed": confirmed and not survivors, "escalated": escalated}
        return _killed(status, {**how, "survivors": survivors})

    async def auto_kill(self, reason: str) -> None:
        with contextlib.suppress(OpError):
            await self.kill(reason)

    async def restart(self) -> dict[str, Any]:
        async with self.lock:
            old = self._live_child(
                f"session {self.sid} has already finished — restart needs a live one"
            )
            self.restarting = True
            try:
                confirmed, escalated = await self.terminate(old)
                await self.drain(old, 0.2, 1.0)
                self.close_child_fds(old)
                confirmed = await self.sweep() == 0 and confirmed
                self.pump.new_screen()  # a fresh screen for the new run, no input left
                self.child = None
                try:
                    new = self.spawn()
                except OSError as e:
                    msg = f"restart failed: cannot run `{self.argv[0]}`: {why(e)}"
                    self.task(self.finish(old, error=msg))
                    raise OpError(msg) from e
            finally:
                self.restarting = False
            self.book.change_state(_RUNNING, child_pid=new.pid, exit_code=None, signaled=False)
        return {
            "restarted": True,
            "child_pid": new.pid,
            "confirmed": confirmed,
            "escalated": escalated,
            "cols": self.pump.cols,
            "rows": self.pump.rows,
        }

    def resize_pty(self, cols: int, rows: int) -> None:
        child = self.child
        if child is not None and child.master >= 0:
            self.os.resize(child.master, cols, rows)

    def kill_now(self) -> None:
        """The supervisor is crashing: SIGKILL the current run's group, no questions."""
        child = self.child
        if child is not None and not child.done:
            self.os.killpg(child.pid, signal.SIGKILL)
        self.os.contain_kill(set())


def _killed(status: dict[str, Any], how: dict[str, Any]) -> dict[str, Any]:
    """A kill's reply: how it went, then the state it left."""
    return {"killed": True, **how, "state": status["state"], "exit_code": status["exit_code"]}


class Child:
    """One run of CMD on its own PTY (a restart makes a new one)."""

    def __init__(self, pid: int, master: int, loop: Loop) -> None:
        self.pid = pid
        self.master = master
        self.exited: Future = loop.future()
        self.eof = Event(loop)
        self.signaled = False
        self.signal: int | None = None  # the signal that ended it
        self.code: int | None = None
        self.escalated = False
        self.pidfd = -1
        self.reader: PtyReader | None = None

    @property
    def done(self) -> bool:
        return self.exited.done()

    def set_wait_status(self, status: int) -> None:
        if self.exited.done():
            return
        if os.WIFSIGNALED(status):
            self.signaled, self.code = True, None
            self.signal = os.WTERMSIG(status)
        else:
            self.code = os.waitstatus_to_exitcode(status)
        self.exited.set_result(None)


def signal_in_note(path: str, code: int | None) -> int | None:
    """N when the child's end note (a file its program writes: the sandbox's waiter or pty relay)
    says `signal N` and its exit code is the 128+N a wrapper turns that signal into; else
    None. The note is the child's own: read without following a link or blocking, and
    believed only where the code agrees (a child that lies could have died so anyway)."""
    if code is None or not 128 < code < 128 + 65:
        return None
    try:
        raw = read_regular(path, 64, follow=False)
    except OSError:  # missing, unreadable, a link or not a file
        return None
    return code - 128 if raw.strip() == f"signal {code - 128}".encode() else None
