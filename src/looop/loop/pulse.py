"""The pulse: one instance per data dir, beat forever, finish the beat on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import socket
import threading
import traceback
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from looop.core import gcpolicy
from looop.core.cgroup import Pen
from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import homes, locks, revive, store
from looop.home.clock import utc_stamp
from looop.home.delays import backoff_delay
from looop.home.errors import LooopError
from looop.home.knobs import Knobs
from looop.home.where import runtime_base
from looop.human.schedules import next_due
from looop.loop import guards
from looop.loop.diskcheck import fullest
from looop.loop.homeguard import refuse_unsafe
from looop.loop.tick import AlreadyRunning as AlreadyRunning
from looop.loop.tick import TickOutcome, tick
from looop.loop.tick import busy_message as busy_message
from looop.loop.tick import tick_once as tick_once
from looop.loop.world import WorldMemo
from looop.seed import ensure_data_dir
from looop.sense.watches import sensor_watches, worker_watches
from looop.views.status import CLOCK_WAKES, beat_holder

NUDGE_MIN_SECS = 5
WOKEN_MIN_SECS = 2  # a wake comes no sooner after the last wake: a watch that never rests
WOKEN = "woken by a change"
SWEEP_SECS = 600
HOME_LOST_EXIT = revive.HOME_LOST_EXIT  # the data dir was removed or replaced: not a crash
UNWANTED_STOP_EXIT = 75  # stopped by a signal no `down` sent: a failure, so it restarts


def _why(reason: str) -> str:
    """The prompt's words for why the pulse forced a beat (its sleep reason)."""
    return {
        "nudge": "the follow-up you asked for (next_interval_s) is due",
        "pending nudge": "the follow-up you asked for (next_interval_s) is due",
        "run_shell follow-up": "a look after the run_shell you ran",
        WOKEN: "a path a sensor watches, or a worker's transition, changed",
    }.get(reason, reason)


SLACK_SECS = 60  # beyond a beat's own deadlines: sensing, prompt, settling
SENSORS_UNBOUNDED_SECS = 3600  # sensors without a timeout: a generous bound all the same


def heartbeat_path(ctx: Ctx) -> Path:
    """The home's heartbeat, in the runtime dir beside its pulse registry (home/homes.py)."""
    return Path(homes.home_dir(runtime_base(ctx.env), str(ctx.paths.data))) / "heartbeat"


def beat_budget(knobs: Knobs) -> float:
    """The longest a healthy beat takes: sensing, every runner attempt and its pauses, a
    run_shell, and some slack; a pulse silent for longer than this is hung."""
    attempts = 1 + knobs.num("runner_retries")
    sensing = knobs.num("sensor_timeout") or SENSORS_UNBOUNDED_SECS
    runner = knobs.num("tick_timeout_secs") * attempts
    pauses = knobs.num("runner_retry_sleep") * attempts * attempts
    return float(sensing + runner + pauses + knobs.num("shell_timeout_secs") + SLACK_SECS)


class Heartbeat:
    """The pulse's signs of life, for whoever restarts it when it stops making progress.

    `Heartbeat.promise(secs)` says "alive now, the next sign comes within secs" twice over: as
    the home's `heartbeat` file in the runtime dir (`<runtime>/looop-<uid>/homes/<key>/`, its text
    the promise, the pid and a count that changes every time), which the pulse session's
    supervisor watches (sessions/supervisor.HeartWatch: it notes on its own clock when the
    text changed, never a file time), and, under a systemd unit, as sd_notify `WATCHDOG_USEC`
    + `WATCHDOG=1` over `$NOTIFY_SOCKET` (the datagram protocol of sd_notify(3), a few lines
    with no library).
    The heartbeat lives in the runtime dir, not the data dir: it is a fact about a live process
    (nothing to keep across a reboot), and a full or read-only data dir must not read as a hung
    pulse — the pulse backs off and says so on its log (`Pulse._io_failed`), and beats again
    once the disk has room. A sign that cannot be written all the same (the runtime dir full or
    wiped) is said once, with when the watchdog will act; the dir is made again on the next try.
    """

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.path = heartbeat_path(ctx)
        self.notify_socket = ctx.env.get("NOTIFY_SOCKET", "")
        self.grace = ctx.knobs().real("pulse_watchdog_secs")
        self.count = 0  # signs given: each text differs from the one before
        self.failing: str | None = None  # why the last sign could not be written

    def promise(self, secs: float) -> None:
        self.count += 1
        try:
            self._write(f"{secs:.3f} {os.getpid()} {self.count}\n")
        except OSError as e:
            self._cannot(secs, e)
        else:
            if self.failing is not None:
                self.failing = None
                self.ctx.events.emit("ok", "pulse.heartbeat", "the heartbeat is written again")
        if self.grace > 0:
            usec = int((secs + self.grace) * 1_000_000)
            self.notify(f"WATCHDOG_USEC={usec}\nWATCHDOG=1")

    def _write(self, text: str) -> None:
        try:
            store.atomic_write(self.path, text, durable=False)
        except FileNotFoundError:  # the runtime dir was wiped under the pulse: made again
            homes.home_folder(runtime_base(self.ctx.env), str(self.ctx.paths.data))
            store.atomic_write(self.path, text, durable=False)

    def _cannot(self, secs: float, e: OSError) -> None:
        """Said once a streak: the watchdog restarts a pulse whose signs stop."""
        first = self.failing is None
        self.failing = f"{type(e).__name__}: {e}"
        if first and self.grace > 0:
            self.ctx.events.emit(
                "warn",
                "pulse.heartbeat",
                f"cannot write the heartbeat ({self.failing}): the watchdog restarts this "
                f"pulse in {secs + self.grace:.0f}s unless it can again",
            )

    def ready(self) -> None:
        self.notify(f"READY=1\nMAINPID={os.getpid()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
        self.end()

    def end(self) -> None:
        """A stopped pulse leaves no heartbeat behind in the runtime dir (only its own)."""
        with contextlib.suppress(OSError):
            with open(self.path, "rb") as f:
                words = f.read(128).split()
            if len(words) > 1 and words[1] == str(os.getpid()).encode():
                os.unlink(self.path)

    def notify(self, message: str) -> bool:
        return sd_notify(self.notify_socket, message)


def sd_notify(address: str, message: str) -> bool:
    """One datagram to systemd's notify socket; False when there is none or it fails."""
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address  # '@': abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(message.encode(), target)
    except OSError:
        return False
    return True


TRACE_ENV = "LOOOP_TRACEMALLOC"
LEAK_ENV = "LOOOP_SOAK_LEAK_KB"
FRAMES = 8
TOP = 25


@dataclass
class MemTrace:
    """Where a long-running pulse's memory goes: `LOOOP_TRACEMALLOC=FILE[:EVERY]` makes `looop
    pulse` trace its allocations and, every EVERY beats (default 100), append to FILE the lines
    that grew most since the first dump. A diagnosis aid for soaks (bench/soak.py), off by default:
    tracing costs the pulse several times its memory and CPU.

    `LOOOP_SOAK_LEAK_KB=N` makes the pulse keep N kB more on every beat: the deliberate leak
    that proves the soak's memory check can fail (tests/integration/test_soak_breaks.py). Only
    the soak's tests set it.
    """

    out: Path | None  # None: no tracing (a leak alone)
    every: int
    base: tracemalloc.Snapshot | None = None
    dumps: int = 0
    leak_kb: int = 0
    _filters: list[tracemalloc.Filter] = field(default_factory=list)
    _kept: list[bytes] = field(default_factory=list)

    def start(self) -> None:
        if self.out is None:
            return
        tracemalloc.start(FRAMES)
        self._filters = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        ]

    def beat(self, beats: int) -> None:
        if self.leak_kb:
            self._kept.append(b"\x01" * (self.leak_kb * 1024))  # written: resident, not lazy
        if self.out is None or beats % self.every:
            return
        snap = tracemalloc.take_snapshot().filter_traces(self._filters)
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"== beat {beats} pid {os.getpid()} traced {current} B (peak {peak} B)"]
        if self.base is None:
            self.base = snap
            lines.append("(baseline)")
        else:
            for stat in snap.compare_to(self.base, "traceback")[:TOP]:
                if stat.size_diff <= 0:
                    continue
                lines.append(f"{stat.size_diff:+d} B {stat.count_diff:+d} blocks")
                lines += [f"    {fr}" for fr in stat.traceback.format()[-FRAMES:]]
        self.dumps += 1
        with open(self.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def _leak_kb(env: Mapping[str, str]) -> int:
    raw = env.get(LEAK_ENV, "").strip()
    if not raw:
        return 0
    try:
        kb = int(raw)
    except ValueError:
        raise ValueError(f"{LEAK_ENV}={raw}: give a whole number of kB a beat") from None
    if not 0 <= kb <= 1 << 20:
        raise ValueError(f"{LEAK_ENV}={raw}: give 0 to 1048576 kB a beat")
    return kb


def trace_from_env(env: Mapping[str, str]) -> MemTrace | None:
    """The trace (or soak leak) asked for in `env`, or None; a bad value is named, never
    guessed."""
    leak = _leak_kb(env)
    raw = env.get(TRACE_ENV, "").strip()
    if not raw:
        return MemTrace(None, 1, leak_kb=leak) if leak else None
    path, sep, every = raw.rpartition(":")
    if not sep:
        path, every = raw, ""
    try:
        n = int(every) if every else 100
    except ValueError:
        raise ValueError(f"{TRACE_ENV}={raw}: EVERY must be a whole number of beats") from None
    if n < 1:
        raise ValueError(f"{TRACE_ENV}={raw}: EVERY must be at least 1")
    return MemTrace(Path(path), n, leak_kb=leak)


def _temp_owner(name: str) -> int | None:
    """The writer's pid when `name` is one of atomic_write's temp names, else None."""
    if not name.startswith(".") or ".tmp." not in name:
        return None
    pid, _, nonce = name.rpartition(".tmp.")[2].partition(".")
    if not pid.isdigit() or len(nonce) != 6:
        return None
    return int(pid)


def _pid_alive(pid: int) -> bool:
    """The process exists (also when it is someone else's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def sweep_temps(dirs: Iterable[Path], now: float, max_age: float = 3600.0) -> list[Path]:
    """Remove the temp files `store.atomic_write` left (`.NAME.tmp.PID.NONCE`) whose writer
    died (SIGKILL, power loss); only the pulse sweeps, so the hot verbs never load this.

    A temp is stale when its writer's pid is gone, or when it is older than max_age (the pid
    may have been reused). A live writer's fresh temp is never touched."""
    removed: list[Path] = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            pid = _temp_owner(entry.name)
            if pid is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if not entry.is_file(follow_symlinks=False):
                    continue
                if _pid_alive(pid) and now - st.st_mtime < max_age:
                    continue
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


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
        # the beat's own knobs: no second read of a config it may have seen edited
        knobs = out.knobs if out.knobs is not None else self.ctx.knobs()
        if out.decided and out.next_interval_s is None:
            guards.clear_next_wake(self.ctx.paths)  # the follow-up it asked for has happened
        wake = guards.next_wake(self.ctx.paths, self.ctx.clock.now())
        if out.next_interval_s is not None:
            cap = knobs.num("max_next_interval")
            secs = max(NUDGE_MIN_SECS, min(out.next_interval_s, cap))
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
            if holder is not None and holder[0] == "tick":
                raise AlreadyRunning(
                    f"a foreground `looop tick` holds the beat (pid {holder[1]}) — start the "
                    "pulse once it has finished"
                )
            pid = holder[1] if holder is not None else ""
            raise AlreadyRunning(
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
            stray = homes.strays(runtime_base(ctx.env), str(ctx.paths.data))
            if stray:
                raise AlreadyRunning(
                    f"a pulse of {ctx.paths.data} is still running (pid {stray[0]['pid']}) on "
                    "a data dir that was removed or replaced — stop it with `looop down`"
                )
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
        if self.io_failures == 1 and e.errno in (errno.ENOSPC, errno.EDQUOT):
            with contextlib.suppress(OSError):  # said once a streak: who fills it
                who = fullest(self.ctx.paths)
                why += f" — {who}" if who else ""
        self.ctx.events.emit("error", "tick.failed", f"beat failed on the data dir: {why}")
        return TickOutcome(status="error", error=why)

    def _io_wait(self, out: TickOutcome) -> int:
        try:
            knobs = out.knobs if out.knobs is not None else self.ctx.knobs()
            cap = knobs.num("backoff_max_secs")
        except (LooopError, OSError):
            cap = 300
        return max(1, backoff_delay(self.io_failures, cap))

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
        try:
            knobs = out.knobs if out.knobs is not None else self.ctx.knobs()
            window = knobs.num("coalesce")
        except (LooopError, OSError):
            window = 0
        if last is not None and now - last < window:
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
        return HOME_LOST_EXIT
