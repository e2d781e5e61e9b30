"""The pulse's heartbeat: its signs of life, the file in the runtime dir and systemd's
sd_notify, and the longest a healthy beat takes. Apart from the pulse because those that
watch it read it too: `up` names the file its supervisor watches (loop/daemon.py), and the
systemd unit's WatchdogSec is the beat's budget (loop/service.py); neither needs the pulse's
loop to say where or how long."""

from __future__ import annotations

import contextlib
import os
import socket
import tracemalloc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from looop.core.context import Ctx
from looop.home import homes, store
from looop.home.knobs import Knobs
from looop.home.where import runtime_base

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
    supervisor watches (sessions/oscalls.HeartWatch: it notes on its own clock when the
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


# Where a long-running pulse's memory goes, for soaks: its allocations traced and dumped
# every N beats (`LOOOP_TRACEMALLOC`), and the deliberate leak that proves a soak's memory
# check can fail (`LOOOP_SOAK_LEAK_KB`). Apart from the pulse because it is a diagnosis aid,
# off by default, that no beat reads: only `looop pulse`'s start (cli/lifecycle.py) and the
# soak benches make one, and the pulse only ticks it once a beat.


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


# The temp files `store.atomic_write` leaves behind when its writer dies (SIGKILL, power
# loss): told by their name (`.NAME.tmp.PID.NONCE`), and swept once their writer is gone.
# Apart from the pulse because it is a fact about the store's writes, not about beating: the
# pulse only says when to sweep (`Pulse._sweep`), and the hot verbs never load this.


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
    died (SIGKILL, power loss); only the pulse sweeps.

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
