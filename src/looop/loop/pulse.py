"""The pulse: one instance per data dir, beat forever, finish the beat on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from looop.core import gcpolicy
from looop.core.cgroup import Pen
from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import homes, locks, revive, store
from looop.home.config import Knobs
from looop.home.delays import backoff_delay
from looop.home.errors import LooopError
from looop.home.stamps import utc_stamp
from looop.home.where import runtime_base
from looop.human.schedules import next_due
from looop.loop import guards
from looop.loop.beat import TickOutcome
from looop.loop.daemon import refuse_strays, refuse_tick
from looop.loop.heartbeat import Heartbeat, MemTrace, beat_budget, sweep_temps
from looop.loop.homeguard import refuse_unsafe
from looop.loop.tick import tick, who_fills
from looop.loop.world import WorldMemo
from looop.seed import ensure_data_dir
from looop.sense import sensor_watches, worker_watches
from looop.views.status import CLOCK_WAKES, beat_holder

WOKEN_MIN_SECS = 2  # a wake comes no sooner after the last wake: a watch that never rests
WOKEN = "woken by a change"
SWEEP_SECS = 600
UNWANTED_STOP_EXIT = 75  # stopped by a signal no `down` sent: a failure, so it restarts


def _why(reason: str) -> str:
    """The prompt's words for why the pulse forced a beat (its sleep reason)."""
    return {
        "nudge": "the follow-up you asked for (next_interval_s) is due",
        "pending nudge": "the follow-up you asked for (next_interval_s) is due",
        "run_shell follow-up": "a look after the run_shell you ran",
        WOKEN: "a path a sensor watches, or a worker's transition, changed",
    }.get(reason, reason)


@dataclass
class Pulse:
    ctx: Ctx
    stop: threading.Event = field(default_factory=threading.Event)
    workers_alive: Callable[[], bool] = lambda: False
    max_beats: int | None = None  # tests and demos stop after N beats
    beats: int = 0
    swept_at: float | None = None  # monotonic time of the last temp-file sweep
    memo: WorldMemo = field(default_factory=WorldMemo)  # the last world read, beat to beat
    heart: Heartbeat = field(init=False)  # signs of life for the watchdog
    io_failures: int = 0  # beats in a row whose own bookkeeping hit an OSError (EROFS, EIO)
    # (st_dev, st_ino) of the data dir and of the lock file it holds, taken at start
    home_id: tuple[list[int] | None, list[int] | None] = (None, None)
    memtrace: MemTrace | None = None  # LOOOP_TRACEMALLOC: allocations dumped every N beats
    unsaid: str | None = None  # a stop signal's line its handler could not write (see below)
    stopped_by: str | None = None  # the signal that stopped it
    watcher: Watcher | None = None  # what wakes its sleep early (sense/sensors.py), while it runs
    woken_at: float | None = None  # monotonic time of the last wake by a change

    def __post_init__(self) -> None:
        self.heart = Heartbeat(self.ctx)

    def home_lost(self) -> str | None:
        """Why the data dir this pulse started on is no longer the one at its path (removed,
        or replaced by another), or None while it is."""
        paths = self.ctx.paths
        data_id, lock_id = self.home_id
        if data_id is None and lock_id is None:
            return None  # not started by run() (a loop driven on its own): nothing to compare
        if homes.identity(str(paths.data)) != data_id:
            gone = not paths.data.exists()
            return f"data dir {paths.data} was {'removed' if gone else 'replaced'}"
        if homes.identity(str(paths.lock_file)) != lock_id:
            return f"lock file {paths.lock_file} was removed or replaced"
        return None

    def choose_sleep(self, out: TickOutcome) -> tuple[int, str, bool]:
        """(seconds, reason, force the next beat); never past the next schedule's due time."""
        secs, reason, force = self._cadence(out)
        try:
            due = next_due(self.ctx.paths.schedules, self.ctx.clock, self.ctx.paths.schedule_marks)
        except Exception as e:  # a schedule must never stop the pulse
            self.ctx.events.emit("warn", "schedule.error", f"cannot read schedules: {e}")
            due = None
        if due is not None:
            # +1: land just after the due second, so the probe already reads it as due
            wait = max(1, math.ceil(due[0] - self.ctx.clock.now()) + 1)
            if wait < secs:
                return wait, f"schedule {due[1]} due", force
        return secs, reason, force

    def _sweep(self) -> None:
        """At start and every SWEEP_SECS: temp files left by a killed atomic write go."""
        mono = self.ctx.clock.monotonic()
        if self.swept_at is not None and mono - self.swept_at < SWEEP_SECS:
            return
        self.swept_at = mono
        gone = sweep_temps(self.ctx.paths.written_dirs(), self.ctx.clock.now())
        if gone:
            names = [self.ctx.paths.rel(p) for p in gone]
            self.ctx.events.record("temps_swept", files=names)

    def _cadence(self, out: TickOutcome) -> tuple[int, str, bool]:
        knobs = self._knobs(out)
        if out.decided and out.next_interval_s is None:
            guards.clear_next_wake(self.ctx.paths)  # the follow-up it asked for has happened
        wake = guards.next_wake(self.ctx.paths, self.ctx.clock.now())
        if out.next_interval_s is not None:
            cap = knobs.num("max_next_interval")
            secs = max(guards.NUDGE_MIN_SECS, min(out.next_interval_s, cap))
            self.ctx.events.emit(
                "info",
                "cadence",
                f"decider asked for the next beat in {secs}s",
                secs=secs,
                asked=out.next_interval_s,
            )
            return secs, "nudge", True
        if out.follow_up_s is not None:
            return out.follow_up_s, "run_shell follow-up", True
        if out.coalesce_s is not None:  # unforced: a change that undid itself decides nothing
            return out.coalesce_s, "coalescing changes", False
        if out.acted:
            secs, reason = knobs.interval_for("busy"), "busy"
        elif self.workers_alive():
            secs, reason = knobs.interval_for("active"), "active"
        else:
            secs, reason = knobs.interval_for("idle"), "idle"
        if wake is not None:  # a pending nudge: never sleep past it; force until it decides
            due = int(wake - self.ctx.clock.now())
            if 0 < due <= secs:
                return due, "pending nudge", True
            return secs, reason, due <= 0
        return secs, reason, False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        said = self.ctx.interrupt.press()  # a second stop abandons the beat's decide
        if said is not None:
            self.stopped_by = signal.Signals(signum).name
            said = f"{self.stopped_by}: finishing this beat, then stopping — {said}"
            try:
                self.ctx.events.emit("info", "pulse.stopping", said)
            except RuntimeError:
                # the signal came while this thread was writing to the same buffered stream
                # (a reentrant write raises): say it once the loop has the stream again
                self.unsaid = said
        self.stop.set()
        if self.watcher is not None:
            self.watcher.ring()  # a sleep waiting on the watcher ends now

    def run(self, ready: Callable[[], None] | None = None) -> int:
        ctx = self.ctx
        gcpolicy.long_lived()  # a pulse beats for weeks: its garbage must be collected
        ensure_data_dir(ctx.paths)  # seeded once, at start: its beats never seed (home_lost)
        refuse_unsafe(ctx.paths)  # another user's .decision.json would run as the owner
        fd = locks.try_flock(ctx.paths.lock_file)
        if fd is None:
            holder = beat_holder(ctx.paths)
            refuse_tick(holder)
            pid = holder[1] if holder is not None else ""
            raise LooopError(
                f"a pulse is already running for {ctx.paths.data}"
                + (f" (pid {pid})" if pid else "")
                + " — stop it with `looop down`"
            )
        lock = os.fstat(fd)
        self.home_id = (homes.identity(str(ctx.paths.data)), [lock.st_dev, lock.st_ino])
        entry: tuple[int, str] | None = None
        try:
            # `up` waits for it; nothing after a crash
            store.atomic_write(ctx.paths.pid_file, f"{os.getpid()}\n", durable=False)
            refuse_strays(ctx)
            entry = homes.register(
                runtime_base(ctx.env),
                str(ctx.paths.data),
                {"data_id": self.home_id[0], "lock_id": self.home_id[1]},
            )
            stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # HUP: the supervisor's kill
            old = {s: signal.signal(s, self._on_signal) for s in stops}
            ctx.pen = Pen()  # its sensors' cgroup, kept from beat to beat (core/cgroup.py)
            try:
                if ready is not None:
                    ready()
                self.heart.ready()
                return self._loop()
            finally:
                ctx.pen.close()
                ctx.pen = None
                for s, h in old.items():
                    signal.signal(s, h)
        finally:
            if self.home_lost() is None:  # never another pulse's pid file in a new data dir
                store.remove(ctx.paths.pid_file)
            if entry is not None:
                homes.unregister(*entry)
            os.close(fd)

    def _beat(self, force: bool, slept: float | None, why: str | None = None) -> TickOutcome:
        ctx = self.ctx
        self.heart.promise(beat_budget(ctx.knobs()))
        self._sweep()
        try:
            return tick(ctx, force=force, memo=self.memo, slept=slept, seed=False, why_forced=why)
        except LooopError as e:
            ctx.events.emit("error", "tick.error", str(e))
            ctx.events.record("tick_error", reason=str(e))
            return TickOutcome(status="error", error=str(e))
        except Exception as e:  # the pulse is the unbreakable shell: log and keep beating
            last = traceback.format_exc().strip().splitlines()[-1]
            ctx.events.emit("error", "tick.crash", f"beat crashed: {last}")
            ctx.events.record("tick_crash", error=repr(e), trace=traceback.format_exc())
            return TickOutcome(status="error", error=repr(e))

    def _io_failed(self, e: OSError) -> TickOutcome:
        """EROFS, EIO, ENOSPC in the beat's own bookkeeping: a failed beat, said on the log
        (the only place left), backed off in memory, never the pulse's end."""
        self.io_failures += 1
        why = f"{type(e).__name__}: {e}"
        if self.io_failures == 1:  # said once a streak: who fills it
            why += who_fills(self.ctx.paths, e)
        self.ctx.events.emit("error", "tick.failed", f"beat failed on the data dir: {why}")
        return TickOutcome(status="error", error=why)

    def _knobs(self, out: TickOutcome) -> Knobs:
        """The beat's own knobs: no second read of a config it may have seen edited."""
        return out.knobs if out.knobs is not None else self.ctx.knobs()

    def _knob(self, out: TickOutcome, name: str, unread: int) -> int:
        try:
            return self._knobs(out).num(name)
        except (LooopError, OSError):
            return unread

    def _io_wait(self, out: TickOutcome) -> int:
        return max(1, backoff_delay(self.io_failures, self._knob(out, "backoff_max_secs", 300)))

    def _rest(self, secs: float) -> bool:
        """Sleep until the next beat, a stop, or a change the watcher sees (True; at once after
        a quiet spell, else not before WOKEN_MIN_SECS after the last wake, so a path changing
        all the time beats no faster), promising a heartbeat in short steps, so a watchdog can
        tell a sleeping pulse from a stopped one."""
        watcher = self.watcher
        grace = self.heart.grace
        step = max(1.0, grace / 2) if grace > 0 else float(secs)
        deadline = self.ctx.clock.monotonic() + secs
        floor = float("-inf") if self.woken_at is None else self.woken_at + WOKEN_MIN_SECS
        promised = 0.0  # monotonic time the last promise runs to
        woken = False
        while not self.stop.is_set():
            now = self.ctx.clock.monotonic()
            if now >= deadline or (woken and now >= floor):
                return woken
            if now >= promised:
                chunk = min(step, deadline - now)
                self.heart.promise(chunk)
                promised = now + chunk
            wait = min(promised, deadline, floor if woken else deadline) - now
            if watcher is None or woken:
                self.stop.wait(wait)
            elif watcher.wait(wait):
                woken = True
        return False

    def _woken_slept(self, out: TickOutcome, began: float, secs: int) -> float:
        """What a woken beat counts as slept, for coalescing: a change after a quiet spell
        (no wake within the coalesce window) decides at once, as after a whole sleep; one
        coming on the heels of another joins its window (changes arriving fast)."""
        now = self.ctx.clock.monotonic()
        last, self.woken_at = self.woken_at, now
        if last is not None and now - last < self._knob(out, "coalesce", 0):
            return now - began
        return float(secs)

    def _arm(self) -> None:
        """Watch anew before each beat (sensors and workers come and go): a change during the
        beat, or after it, wakes the sleep that follows."""
        watcher = self.watcher
        if watcher is None:
            return
        watcher.forget()
        try:
            folders, statuses = worker_watches(self.ctx)
            wanted = sensor_watches(self.ctx) + folders
        except OSError:
            return  # an unreadable sensors folder: the beat says so; the interval wakes
        for path in wanted:
            watcher.watch(path)
        for path in statuses:
            watcher.watch(path, itself=True)
        with contextlib.suppress(OSError):  # said by `status` and `doctor`
            if watcher.usable and not watcher.used_up:
                store.remove(self.ctx.paths.clock_wakes)
            elif not self.ctx.paths.clock_wakes.exists():
                store.atomic_write(self.ctx.paths.clock_wakes, CLOCK_WAKES + "\n")

    def _loop(self) -> int:
        self._say_start()
        # armed before each beat: a change during it wakes the sleep after it; a pulse of N
        # beats (tests, demos) rests on its interval alone
        self.watcher = Watcher() if self.max_beats is None else None
        try:
            left = self._beats()
        finally:
            if self.watcher is not None:
                self.watcher.close()
                self.watcher = None
        if left is not None:
            return left
        self.heart.stopping()
        self._say_stop()
        return self._exit_code()

    def _beats(self) -> int | None:
        """Beat until stopped (None), or the exit code of leaving a lost data dir."""
        force = True  # the first beat of every pulse decides, so `up` acts at once
        reason = "the first beat of a pulse always decides"
        slept: float | None = None  # the first beat has no sleep before it: no coalescing
        while not self.stop.is_set():
            lost = self.home_lost()
            if lost is not None:
                return self._leave(lost)
            self._arm()
            try:
                out = self._beat(force, slept, _why(reason) if force else None)
                self.io_failures = 0
            except OSError as e:  # even the failure could not be written: a failed beat
                out = self._io_failed(e)
            self.beats += 1
            if self.memtrace is not None:
                self.memtrace.beat(self.beats)
            if self.max_beats is not None and self.beats >= self.max_beats:
                return None
            woke_idle = reason == WOKEN and out.status == "skip"
            secs, reason, force = self._next_sleep(out)
            if self.stop.is_set():
                return None
            if woke_idle:  # what it saw was the beat's own doing, and a replaced file is a
                self._arm()  # new one to watch; before the sleep is said, or a change made on
            self._say_sleep(secs, reason)  # hearing it is dropped with the beat's own
            began = self.ctx.clock.monotonic()
            slept = secs
            if self._rest(secs):
                slept = self._woken_slept(out, began, secs)
                reason, force = WOKEN, False
                self.ctx.events.emit("info", "pulse.woken", "woken by a change: beating now")
        return None

    def _exit_code(self) -> int:
        """0 for a human's stop (`down` says the pulse is no longer wanted before it signals);
        a signal while `up` still wants it (a stray kill, its watchdog, its terminal hung up)
        is a failure its supervisor restarts."""
        if self.stopped_by is None or revive.read_wanted(str(self.ctx.paths.data)) is None:
            return 0
        self.ctx.events.emit(
            "warn",
            "pulse.stop",
            f"{self.stopped_by} stopped this pulse, but `looop up` still wants it running: it is "
            "started again — `looop down` stops it for good",
        )
        return UNWANTED_STOP_EXIT

    def _say_start(self) -> None:
        ctx = self.ctx
        knobs = ctx.knobs()
        runner = "?"
        with contextlib.suppress(LooopError):
            r = ctx.config().runner()
            runner = r.name if r else "?"
        ctx.events.emit(
            "ok",
            "pulse.start",
            f"pulse up · idle {knobs.interval_for('idle')}s · "
            f"busy {knobs.interval_for('busy')}s · runner {runner}",
            idle=knobs.interval_for("idle"),
            busy=knobs.interval_for("busy"),
            active=knobs.interval_for("active"),
            runner=runner,
            data_dir=str(ctx.paths.data),
        )
        try:
            ctx.events.record("pulse_start", pid=os.getpid())
        except OSError as e:  # a read-only data dir: the first beat fails and says so
            ctx.events.emit("warn", "pulse.start", f"cannot record the start: {e}")

    def _next_sleep(self, out: TickOutcome) -> tuple[int, str, bool]:
        """How long to rest, why, and whether the next beat is forced; a failing data dir
        backs off instead."""
        try:
            secs, reason, force = self.choose_sleep(out)
        except OSError as e:
            out = self._io_failed(e)
            secs, reason, force = self._io_wait(out), "data dir failing", False
        if self.io_failures:
            secs, reason = self._io_wait(out), f"data dir failing ({self.io_failures} beat(s))"
        return secs, reason, force

    def _say_sleep(self, secs: int, reason: str) -> None:
        ctx = self.ctx
        ctx.events.emit(
            "info", "sleep", f"next beat in {secs}s ({reason})", secs=secs, reason=reason
        )
        # durable, so `looop status` can say when the next beat comes
        until = utc_stamp(ctx.clock.now() + secs)
        mono = round(ctx.clock.monotonic() + secs, 3)  # true past a wall clock step
        # counted already when the beat failed; the pulse sleeps all the same
        with contextlib.suppress(OSError):
            ctx.events.record("pulse_sleep", secs=secs, reason=reason, until=until, until_mono=mono)

    def _say_stop(self) -> None:
        ctx = self.ctx
        if self.unsaid is not None:
            ctx.events.emit("info", "pulse.stopping", self.unsaid)
            self.unsaid = None
        ctx.events.emit(
            "ok", "pulse.stop", f"pulse stopped after {self.beats} beat(s)", beats=self.beats
        )
        with contextlib.suppress(OSError):  # the stop line above said it
            ctx.events.record("pulse_stop", beats=self.beats)

    def _leave(self, why: str) -> int:
        """The data dir is not the one this pulse started on: stop (one line in its log, an
        event where the path is writable) rather than beat on, or seed, a home it cannot see."""
        msg = f"{why} under this pulse — stopping; `looop up` starts a pulse on it"
        self.ctx.events.emit("error", "pulse.home_lost", msg)
        # the path is gone or not writable: the line above said it
        with contextlib.suppress(OSError):
            self.ctx.events.record("pulse_home_lost", reason=why, pid=os.getpid())
        return revive.HOME_LOST_EXIT  # the data dir was removed or replaced: not a crash
