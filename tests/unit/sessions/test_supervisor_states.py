"""The session state machine without a PTY: the lifecycle driven through a fake OS.

The real-PTY behaviour is covered by tests/integration/test_sessions.py; here each move
between states is forced on purpose, including the races a real child rarely hits.
"""

from __future__ import annotations

import json
import os
import signal
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from looop.home import store
from looop.sessions import evloop as ev
from looop.sessions import protocol as proto
from looop.sessions.lifecycle import Child, Lifecycle, OpError
from looop.sessions.logs import index_offset
from looop.sessions.pump import Pump
from looop.sessions.state import STATES, STATUS, load_session
from looop.sessions.states import IllegalTransition, SessionState, StatusBook

pytestmark = pytest.mark.timeout(20)

S = SessionState


class FakeReader:
    def __init__(self, deliver: Callable[[bytes], None], done: Callable[[], None]) -> None:
        self.deliver, self.done, self.stopped = deliver, done, False

    def stop(self) -> bool:
        self.stopped = True
        return True


class FakeProc:
    def __init__(self, pid: int, ignores_hup: bool, hup_exits: int | None = None) -> None:
        self.pid = pid
        self.alive = True
        self.group_alive = True
        self.ignores_hup = ignores_hup
        self.hup_exits = hup_exits  # catches SIGHUP and exits with this code (the pulse: 0)


class FakeOS:
    """Processes that end when told to, or when a signal they do not ignore reaches them."""

    def __init__(self) -> None:
        self.loop: ev.Loop | None = None
        self.notify: Callable[[], None] | None = None  # the lifecycle's reap (SIGCHLD)
        self.next_pid = 1000
        self.procs: dict[int, FakeProc] = {}
        self.ended: deque[tuple[int, int]] = deque()
        self.readers: dict[int, FakeReader] = {}
        self.signals: list[tuple[int, int]] = []
        self.closed: list[int] = []
        self.resized: list[tuple[int, int, int]] = []
        self.spawn_error: BaseException | None = None
        self.ignores_hup = False
        self.hup_exits: int | None = None
        self.leftovers: set[int] = set()  # what a run started that detached (setsid, …)
        self.unkillable: set[int] = set()  # of those, what SIGKILL cannot end (D state)
        self.sweeps = 0

    def spawn(self, argv: list[str], cols: int, rows: int) -> tuple[int, int]:
        if self.spawn_error is not None:
            raise self.spawn_error
        self.next_pid += 1
        pid = self.next_pid
        self.procs[pid] = FakeProc(pid, self.ignores_hup, self.hup_exits)
        return pid, pid + 50000  # a master fd number nothing ever writes to

    def end(self, pid: int, code: int | None = None, sig: int | None = None) -> None:
        """The process ends (exit code or signal); its PTY reaches EOF; SIGCHLD follows."""
        p = self.procs[pid]
        if not p.alive:
            return
        p.alive = p.group_alive = False
        self.ended.append((pid, sig if sig is not None else (code or 0) << 8))
        reader = self.readers.get(pid + 50000)
        if reader is not None:
            reader.done()
        if self.notify is not None and self.loop is not None:
            self.loop.call_soon(self.notify)

    def reap_one(self) -> tuple[int, int] | None:
        return self.ended.popleft() if self.ended else None

    def pidfd_open(self, pid: int) -> int:
        return -1

    def close(self, fd: int) -> None:
        self.closed.append(fd)

    def killpg(self, pgid: int, sig: int) -> None:
        self.signals.append((pgid, sig))
        p = self.procs.get(pgid)
        if p is None or not p.alive or (sig == signal.SIGHUP and p.ignores_hup):
            return
        if sig == signal.SIGHUP and p.hup_exits is not None:
            self.end(pgid, code=p.hup_exits)
            return
        self.end(pgid, sig=sig)

    def group_gone(self, pgid: int) -> bool:
        return not self.procs[pgid].group_alive

    def resize(self, master: int, cols: int, rows: int) -> None:
        self.resized.append((master, cols, rows))

    def contained(self, spare: set[int]) -> list[int]:
        return sorted(self.leftovers - spare)

    def contain_kill(self, spare: set[int]) -> None:
        self.sweeps += 1
        self.leftovers = (self.leftovers & spare) | (self.leftovers & self.unkillable)

    def start_reader(
        self,
        master: int,
        loop: ev.Loop,
        deliver: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> FakeReader:
        reader = FakeReader(deliver, done)
        self.readers[master] = reader
        return reader


class Rig:
    """One lifecycle on the running loop with a fake OS and every status write recorded."""

    def __init__(self, loop: ev.Loop, log_dir: Path | None = None) -> None:
        self.loop = loop
        self.os = FakeOS()
        self.writes: list[dict[str, Any]] = []
        self.farewells: list[bytes] = []
        ticks = iter(range(10**6))
        self.log_dir = log_dir
        self.indexed: list[int] = []  # with a log: where the index said output ended, per write
        self.book = StatusBook(self.record, lambda: f"t{next(ticks)}", 80, 24)
        self.os.loop = loop
        log_fd = (
            -1 if log_dir is None else os.open(log_dir / "output.log", os.O_WRONLY | os.O_CREAT)
        )
        self.pump = Pump(loop, log_fd, 80, 24, lambda: 0.0, str(log_dir or ""))
        self.life = Lifecycle("w1", ["agent"], self.book, self.pump, self.os, loop, self.farewell)
        self.os.notify = self.life.reap

    def record(self, status: dict[str, Any]) -> None:
        self.writes.append(status)
        if self.log_dir is not None:
            self.indexed.append(index_offset(str(self.log_dir), 4e9))

    async def farewell(self, end: bytes) -> None:
        self.farewells.append(end)

    def states(self) -> list[str]:
        return [w["state"] for w in self.writes]

    def start(self) -> Child:
        child = self.life.start()
        assert isinstance(child, Child)
        return child

    async def ended(self) -> None:
        assert await ev.within(self.loop, self.life.done.wait(), 10), "the session never ended"


def run(test: Callable[[Rig], Coroutine[Any, Any, None]], log_dir: Path | None = None) -> None:
    """Run one scenario on a fresh supervisor loop; its failure is the test's."""
    loop = ev.Loop()
    rig = Rig(loop, log_dir)
    try:
        task = loop.task(test(rig))
        loop.run_until(task)
        task.result()
    finally:
        loop.close()
        rig.pump.close_log()


# -- the table and the book ---------------------------------------------------------------------


def test_state_values_are_the_strings_on_disk() -> None:
    assert STATES == ("starting", "running", "exited", "killed")
    assert [s.value for s in SessionState] == list(STATES)


@pytest.mark.parametrize("old", list(SessionState))
@pytest.mark.parametrize("new", list(SessionState))
def test_change_state_allows_only_the_table(old: SessionState, new: SessionState) -> None:
    writes: list[dict[str, Any]] = []
    heard: list[tuple[SessionState, SessionState]] = []
    book = StatusBook(writes.append, lambda: "t", 80, 24)
    book.status["state"] = old.value
    book.listeners.append(lambda o, n, st: heard.append((o, n)))
    legal = {
        S.STARTING: {S.RUNNING, S.EXITED, S.KILLED},
        S.RUNNING: {S.RUNNING, S.EXITED, S.KILLED},  # RUNNING → RUNNING: a restart
        S.EXITED: set(),
        S.KILLED: set(),
    }[old]
    if new in legal:
        book.change_state(new, child_pid=7)
        assert book.state is new
        assert writes[-1]["state"] == new.value and writes[-1]["child_pid"] == 7
        assert heard == [(old, new)]
    else:
        with pytest.raises(IllegalTransition, match=f"{old.value} → {new.value}"):
            book.change_state(new, child_pid=7)
        assert book.state is old and writes == [] and heard == []
        assert book.status["child_pid"] is None  # nothing of the refused change stuck


def test_update_is_no_transition_and_cannot_smuggle_a_state() -> None:
    writes: list[dict[str, Any]] = []
    book = StatusBook(writes.append, lambda: "later", 80, 24)
    first = book.status["last_change"]
    book.update(cols=100, rows=30)
    assert (writes[-1]["cols"], writes[-1]["rows"], writes[-1]["last_change"]) == (100, 30, first)
    with pytest.raises(IllegalTransition):
        book.update(state="killed")
    assert book.state is S.STARTING


def test_status_file_keeps_its_format(tmp_path: Path) -> None:
    sdir = tmp_path / "sessions" / "w1"
    sdir.mkdir(parents=True)
    (sdir / "meta.json").write_text(json.dumps({"v": 1, "id": "w1", "cmd": ["sh"]}))
    book = StatusBook(
        lambda st: store.write_json(sdir / STATUS, st), lambda: "2026-01-01T00:00:00.000Z", 80, 24
    )
    book.change_state(S.RUNNING, child_pid=42)
    book.change_state(S.EXITED, child_pid=None, exit_code=3)
    raw = json.loads((sdir / "status.json").read_text())
    assert raw["state"] == "exited" and type(raw["state"]) is str
    assert set(raw) == {
        "v",
        "state",
        "child_pid",
        "exit_code",
        "signaled",
        "last_change",
        "cols",
        "rows",
        "error",
    }
    s = load_session(sdir)
    assert s is not None and (s.state, s.label, s.exit_code) == ("exited", "exit:3", 3)


# -- the lifecycle through a fake OS ------------------------------------------------------------


def test_start_then_child_exit_is_exited_with_its_code() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        master = child.master
        assert r.book.state is S.RUNNING and r.book.status["child_pid"] == child.pid
        r.os.readers[master].deliver(b"hello\r\n")
        r.os.end(child.pid, code=3)
        await r.ended()
        assert r.states() == ["running", "exited"]
        st = r.writes[-1]
        assert (st["exit_code"], st["signaled"], st["child_pid"]) == (3, False, None)
        assert r.farewells == [proto.exit_frame(False, 3)]
        assert (await r.life.final)["state"] == "exited"
        assert master in r.os.closed and child.master == -1 and r.os.readers[master].stopped
        assert r.pump.backlog_bytes == len(b"hello\r\n")

    run(t)


def test_a_quiet_run_that_printed_nothing_is_judged_without_a_screen_then_its_prompt_is() -> None:
    """Output going quiet makes the supervisor read what the screen asks; a run that printed
    nothing has no screen to ask from and makes none (an idle fleet's memory), while one
    whose last line asks is said to wait at that prompt."""

    async def t(r: Rig) -> None:
        child = r.start()
        r.life.quiet(True)  # the output mark's look a second after the start: nothing since
        assert r.pump.emu is None and r.book.status.get("prompt") is None
        r.os.readers[child.master].deliver(b"Delete everything? (y/N) ")
        r.life.quiet(True)
        assert r.book.status.get("prompt") == "prompt: Delete everything? (y/N)"
        r.os.end(child.pid, code=0)
        await r.ended()

    run(t)


def test_a_session_reads_over_only_once_its_output_is_indexed_to_the_end(tmp_path: Path) -> None:
    """`wait` then `log --since` a later time: nothing of the run, however soon it asks."""

    async def t(r: Rig) -> None:
        child = r.start()
        r.os.readers[child.master].deliver(b"early\r\n")
        r.os.end(child.pid, code=0)
        await r.ended()
        assert r.states() == ["running", "exited"] and r.indexed == [0, len(b"early\r\n")]

    run(t, tmp_path)
    assert (tmp_path / "output.log").read_bytes() == b"early\r\n"
    assert (tmp_path / "output.times").read_text().count("\n") == 2  # the start and the end


def test_a_command_that_cannot_run_is_exited_with_the_reason() -> None:
    async def t(r: Rig) -> None:
        r.os.spawn_error = FileNotFoundError(2, "No such file or directory")
        reason = r.life.start()
        assert reason == "cannot run `agent`: No such file or directory"
        assert r.states() == ["exited"] and r.writes[-1]["error"] == reason
        assert r.life.child is None and r.os.signals == []

    run(t)


def test_kill_while_starting_is_refused_and_the_start_still_works() -> None:
    async def t(r: Rig) -> None:
        with pytest.raises(OpError, match="has not started yet"):
            await r.life.kill("supervisor got SIGTERM")
        assert r.book.state is S.STARTING and r.writes == [] and r.os.signals == []
        r.start()
        assert r.book.state is S.RUNNING

    run(t)


def test_kill_hangs_up_the_group_and_records_killed() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        reply = await r.life.kill("timed out after 5s")
        assert reply == {
            "killed": True,
            "confirmed": True,
            "escalated": False,
            "survivors": 0,
            "state": "killed",
            "exit_code": None,
        }
        assert r.os.signals == [(child.pid, signal.SIGHUP)]
        assert r.writes[-1]["error"] == "timed out after 5s" and r.writes[-1]["signaled"]
        await r.ended()
        with pytest.raises(OpError, match="already finished"):
            await r.life.kill()
        assert r.states() == ["running", "killed"]

    run(t)


def test_a_child_that_ignores_the_hangup_is_killed_outright() -> None:
    async def t(r: Rig) -> None:
        r.os.ignores_hup = True
        child = r.start()
        reply = await r.life.kill()
        assert (reply["confirmed"], reply["escalated"], reply["state"]) == (True, True, "killed")
        assert r.os.signals == [(child.pid, signal.SIGHUP), (child.pid, signal.SIGKILL)]

    run(t)


def test_what_a_run_left_behind_dies_before_its_end_is_recorded() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        r.os.leftovers = {child.pid + 1, child.pid + 2}  # a setsid daemon and its child
        r.os.end(child.pid, code=0)
        await r.ended()
        assert r.os.leftovers == set() and r.os.sweeps >= 1
        assert (r.writes[-1]["state"], r.writes[-1]["survivors"]) == ("exited", 0)

    run(t)


def test_a_kill_says_what_survived_and_is_not_confirmed() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        r.life.sweep_wait = 0.05  # SIGKILL cannot end it: give up soon
        r.os.leftovers = {child.pid + 1, child.pid + 2}
        r.os.unkillable = {child.pid + 2}
        reply = await r.life.kill()
        assert (reply["killed"], reply["confirmed"], reply["survivors"]) == (True, False, 1)
        await r.ended()
        assert r.writes[-1]["survivors"] == 1 and r.os.leftovers == {child.pid + 2}

    run(t)


def test_a_restart_sweeps_the_old_run_first() -> None:
    async def t(r: Rig) -> None:
        old = r.start()
        r.os.leftovers = {old.pid + 7}
        reply = await r.life.restart()
        assert reply["confirmed"] and r.os.leftovers == set()
        assert r.book.state is S.RUNNING and reply["child_pid"] != old.pid

    run(t)


def test_child_exit_while_a_kill_is_pending_finishes_once() -> None:
    async def t(r: Rig) -> None:
        r.os.ignores_hup = True
        child = r.start()
        kill = r.loop.task(r.life.kill())
        while not r.os.signals:  # the kill has sent its SIGHUP and waits for the group
            await ev.sleep(r.loop, 0)
        r.os.end(child.pid, code=0)  # … which ends on its own inside the grace period
        assert await ev.within(r.loop, kill, 10)
        reply = kill.result()
        await r.ended()
        # It ended by itself before any SIGKILL: recorded as its own exit, exactly once.
        assert r.os.signals == [(child.pid, signal.SIGHUP)]
        assert (reply["escalated"], reply["state"], reply["exit_code"]) == (False, "exited", 0)
        assert r.states() == ["running", "exited"] and len(r.farewells) == 1

    run(t)


def test_restart_swaps_the_child_and_keeps_running() -> None:
    async def t(r: Rig) -> None:
        old = r.start()
        old_reader, old_master = r.os.readers[old.master], old.master
        old_reader.deliver(b"old screen")
        reply = await r.life.restart()
        new = r.life.child
        assert new is not None and new.pid != old.pid and reply["child_pid"] == new.pid
        assert r.states() == ["running", "running"] and r.writes[-1]["child_pid"] == new.pid
        assert old_master in r.os.closed and not r.life.done.is_set()
        old_reader.deliver(b"late words of the old run")
        assert "old screen" not in r.pump.render("plain", True)["text"]
        assert r.pump.backlog_bytes == len(b"old screen")  # the old run's last words dropped
        r.os.end(new.pid, code=0)
        await r.ended()
        assert r.states() == ["running", "running", "exited"]

    run(t)


def test_restart_after_exit_is_refused() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        r.os.end(child.pid, code=1)
        await r.ended()
        spawned = r.os.next_pid
        with pytest.raises(OpError, match="restart needs a live one"):
            await r.life.restart()
        assert r.os.next_pid == spawned and r.states() == ["running", "exited"]

    run(t)


def test_restart_that_cannot_spawn_ends_the_session_with_the_reason() -> None:
    async def t(r: Rig) -> None:
        r.start()
        r.os.spawn_error = PermissionError(13, "Permission denied")
        with pytest.raises(OpError, match="restart failed: cannot run `agent`: Permission denied"):
            await r.life.restart()
        await r.ended()
        st = r.writes[-1]
        assert (st["state"], st["signaled"]) == ("killed", True)
        assert st["error"] == "restart failed: cannot run `agent`: Permission denied"

    run(t)


def test_a_socket_that_will_not_bind_ends_a_running_session_as_killed() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        await r.life.abort_start(child, "cannot bind the control socket: no space")
        st = r.writes[-1]
        assert (st["state"], st["exit_code"], st["child_pid"]) == ("killed", 1, None)
        assert r.life.final.done() and not r.life.accepts_input

    run(t)


def test_input_is_taken_only_while_a_child_runs() -> None:
    async def t(r: Rig) -> None:
        assert not r.life.accepts_input
        child = r.start()
        assert r.life.accepts_input
        r.os.end(child.pid, code=0)
        await r.ended()
        assert not r.life.accepts_input

    run(t)


# -- restart on failure (the pulse's restartPolicy) ---------------------------------------------


def test_a_failed_run_restarts_after_a_growing_capped_delay_with_its_cause() -> None:
    async def t(r: Rig) -> None:
        r.life.restart_policy = (0.05, 0.1)
        first = r.start()
        r.os.readers[first.master].deliver(b"\x1b[31mboom: disk on fire\x1b[0m\r\n")
        t0 = r.loop.time()
        r.os.end(first.pid, code=3)
        assert await ev.within(r.loop, r.loop.task(_until_pid_changes(r, first.pid)), 5)
        assert r.loop.time() - t0 >= 0.05
        second = r.life.child
        assert second is not None and not second.done and not r.life.done.is_set()
        st = r.book.status
        assert (st["state"], st["child_pid"], st["restarts"]) == ("running", second.pid, 1)
        assert st["last_cause"] == "exit 3: boom: disk on fire"
        r.os.end(second.pid, sig=signal.SIGKILL)
        assert await ev.within(r.loop, r.loop.task(_until_pid_changes(r, second.pid)), 5)
        assert r.book.status["restarts"] == 2
        assert r.book.status["last_cause"].startswith("killed by SIGKILL")
        # delays: 0.05, then 0.1 (doubled), then capped at 0.1
        assert [w["restart_in_s"] for w in r.writes if w.get("restart_in_s")] == [0.05, 0.1]
        third = r.life.child
        assert third is not None
        r.os.end(third.pid, code=0)  # a clean exit is the end: no restart
        await r.ended()
        assert r.book.status["state"] == "exited" and r.book.status["restarts"] == 2

    run(t)


async def _until_pid_changes(r: Rig, pid: int) -> None:
    while r.life.child is None or r.life.child.pid == pid or r.life.child.done:
        await ev.sleep(r.loop, 0.01)


def test_without_a_policy_a_failed_run_ends_the_session() -> None:
    async def t(r: Rig) -> None:
        child = r.start()
        r.os.end(child.pid, code=1)
        await r.ended()
        assert r.states() == ["running", "exited"] and "restarts" not in r.book.status

    run(t)


def test_a_kill_during_the_restart_delay_ends_the_session_and_nothing_restarts() -> None:
    async def t(r: Rig) -> None:
        r.life.restart_policy = (5.0, 5.0)
        child = r.start()
        r.os.end(child.pid, code=2)
        while r.book.status.get("restart_in_s") is None:
            await ev.sleep(r.loop, 0.01)
        reply = await r.life.kill("down")
        await r.ended()
        assert reply["state"] == "exited" and r.book.status["state"] == "exited"
        assert len(r.os.procs) == 1  # never spawned again

    run(t)


def test_a_kill_op_is_not_a_failure_to_restart_from() -> None:
    async def t(r: Rig) -> None:
        r.life.restart_policy = (0.01, 0.01)
        r.start()
        reply = await r.life.kill()
        await r.ended()
        assert reply["state"] == "killed" and len(r.os.procs) == 1

    run(t)


def test_the_watchdog_ends_a_run_as_failed_and_it_restarts_with_that_cause() -> None:
    async def t(r: Rig) -> None:
        r.life.restart_policy = (0.01, 0.01)
        child = r.start()
        r.life.watchdog_kill("watchdog: no heartbeat for 9s")
        assert await ev.within(r.loop, r.loop.task(_until_pid_changes(r, child.pid)), 5)
        assert r.os.signals[0] == (child.pid, signal.SIGHUP)
        assert r.book.status["last_cause"] == "watchdog: no heartbeat for 9s"
        assert r.book.status["restarts"] == 1

    run(t)


@pytest.mark.parametrize("code", [0, 3])
def test_a_watchdog_kill_the_run_answers_with_a_clean_exit_still_restarts(code: int) -> None:
    """The pulse ends its beat on SIGHUP and exits 0 (or with its final code): the watchdog's
    kill is a failure all the same, so the session restarts rather than stopping for good."""

    async def t(r: Rig) -> None:
        r.life.restart_policy = (0.01, 0.01)
        r.life.final_exit = 3
        r.os.hup_exits = code
        child = r.start()
        r.life.watchdog_kill("watchdog: no heartbeat for 130s")
        assert await ev.within(r.loop, r.loop.task(_until_pid_changes(r, child.pid)), 5)
        assert r.book.state is S.RUNNING and r.book.status["restarts"] == 1
        assert r.book.status["last_cause"] == "watchdog: no heartbeat for 130s"

    run(t)


def test_a_clean_exit_the_watchdog_did_not_cause_still_ends_the_session() -> None:
    async def t(r: Rig) -> None:
        r.life.restart_policy = (0.01, 0.01)
        child = r.start()
        r.os.end(child.pid, code=0)
        await r.ended()
        assert r.book.status["state"] == "exited" and len(r.os.procs) == 1

    run(t)
