"""The pulse's heartbeat: its signs of life, the file in the runtime dir and systemd's
sd_notify, and the longest a healthy beat takes. Apart from the pulse because those that
watch it read it too: `up` names the file its supervisor watches (loop/daemon.py), and the
systemd unit's WatchdogSec is the beat's budget (loop/service.py); neither needs the pulse's
loop to say where or how long."""

from __future__ import annotations

import contextlib
import os
import socket
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
    supervisor watches (sessions/runwatch.HeartWatch: it notes on its own clock when the
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
