"""One libfaketime clock shared by every process of a home, for the soak's clock faults and
the clock tests.

libfaketime keeps its state in a semaphore and shared memory named after the process that
made them, and removes them when that process ends: a home whose first looop process exits
(`looop up` does at once) or is SIGKILLed leaves every later one unable to start. Debian's
`faketime` makes them for its child and keeps them while it lives, so a holder (`faketime -f
+0 sleep`) lives as long as the home and the home names its state (FAKETIME_SHARED)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class NoSharedClock(Exception):
    """The holder could not be started; the message says why."""


def hold_shared_clock() -> tuple[subprocess.Popen[bytes], str]:
    """A running holder and its FAKETIME_SHARED value; raises NoSharedClock."""
    exe = shutil.which("faketime")
    if exe is None:
        raise NoSharedClock("faketime is not installed (apt-get install faketime)")
    for _ in range(5):
        proc = subprocess.Popen(
            [exe, "-f", "+0", "sleep", "1000000"], start_new_session=True, stderr=subprocess.PIPE
        )
        names = _names_given(proc)
        if names is not None:
            return proc, names
        release_shared_clock(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if "File exists" not in err:
            raise NoSharedClock(f"faketime never started its child: {err.strip()}")
        # names of its pid left by an earlier, SIGKILLed process of that pid: their owner is
        # gone, so they are cleared and the holder starts again
        for stale in (f"sem.faketime_sem_{proc.pid}", f"faketime_shm_{proc.pid}"):
            Path("/dev/shm", stale).unlink(missing_ok=True)
    raise NoSharedClock("faketime never started its child (its shared names were taken)")


def _names_given(proc: subprocess.Popen[bytes]) -> str | None:
    """The FAKETIME_SHARED its child was given; None if `faketime` ended first."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            for kid in kids:
                for var in Path(f"/proc/{kid}/environ").read_bytes().split(b"\0"):
                    if var.startswith(b"FAKETIME_SHARED="):
                        return var.split(b"=", 1)[1].decode()
        time.sleep(0.05)  # the child's environ is there only once faketime has exec'd it
    return None


def release_shared_clock(proc: subprocess.Popen[bytes]) -> None:
    """Its child ends, so `faketime` removes the shared state and exits."""
    with contextlib.suppress(OSError, ValueError):
        for kid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            os.kill(int(kid), signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
