"""The pulse's signs of life, for whoever restarts it when it stops making progress.

`Heartbeat.promise(secs)` says "alive now, the next sign comes within secs" twice over: as
`.lock/heartbeat` (its text the promise, its mtime the moment), which the pulse session's
supervisor watches (sessions/supervisor.py `--watchdog-file`), and, under a systemd unit, as
sd_notify `WATCHDOG_USEC` + `WATCHDOG=1` over `$NOTIFY_SOCKET` (the datagram protocol of
sd_notify(3), a few lines with no library). A sign that cannot be written (a read-only data
dir) is skipped: the watchdog then restarts a pulse that cannot work anyway.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from looop.core.context import Ctx
from looop.hot import store
from looop.hot.knobs import Knobs
from looop.hot.paths import Paths

SLACK_SECS = 60  # beyond a beat's own deadlines: sensing, prompt, settling
SENSORS_UNBOUNDED_SECS = 3600  # sensors without a timeout: a generous bound all the same


def heartbeat_path(paths: Paths) -> Path:
    return paths.lock_dir / "heartbeat"


def beat_budget(knobs: Knobs) -> float:
    """The longest a healthy beat takes: sensing, every runner attempt and its pauses, a
    run_shell, and some slack; a pulse silent for longer than this is hung."""
    attempts = 1 + knobs.num("runner_retries")
    sensing = knobs.num("sensor_timeout") or SENSORS_UNBOUNDED_SECS
    runner = knobs.num("tick_timeout_secs") * attempts
    pauses = knobs.num("runner_retry_sleep") * attempts * attempts
    return float(sensing + runner + pauses + knobs.num("shell_timeout_secs") + SLACK_SECS)


class Heartbeat:
    def __init__(self, ctx: Ctx) -> None:
        self.path = heartbeat_path(ctx.paths)
        self.notify_socket = ctx.env.get("NOTIFY_SOCKET", "")
        self.grace = ctx.knobs().real("pulse_watchdog_secs")

    def promise(self, secs: float) -> None:
        try:
            store.atomic_write(self.path, f"{secs:.3f}\n", durable=False)
        except OSError:
            pass  # the supervisor's watchdog decides what a silent pulse means
        if self.grace > 0:
            usec = int((secs + self.grace) * 1_000_000)
            self.notify(f"WATCHDOG_USEC={usec}\nWATCHDOG=1")

    def ready(self) -> None:
        self.notify(f"READY=1\nMAINPID={os.getpid()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

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
