"""`looop tick` run in this process: the Ctx built, the data dir
seeded, one beat, its notifications delivered. The click verb and the click-free face
(verbs/tick.py) both reach it through `run_tick`; a skip beat loads only what
loop/tick.py loads at its top (tests/integration/test_tick_fast.py)."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from looop.cli.ctxbuild import ctx_for
from looop.home.clock import Clock, clock_for
from looop.home.errors import LooopError
from looop.loop.tick import tick_once
from looop.seed import ensure_data_dir

# the beat did not do its work: it failed, erred (a broken config too), or a spend breaker held
# the decide (its line is on stderr); a forced beat that met a usage limit did not decide either
FAILED = ("failed", "error", "budget", "capped")
BACKOFF_HINT = "looop: backing off after failed beats — `looop tick --force` runs now\n"


def run_tick(env: dict[str, str], clock: Clock | None, force: bool) -> None:
    """One foreground beat; SystemExit(1) when it failed or erred."""
    status = beat_here(env, clock, force)
    if status == "abandoned":
        raise SystemExit(130)  # a human's Ctrl-C ended it
    if status in FAILED or (force and status == "limited"):
        raise SystemExit(1)
    if status == "backoff":
        sys.stderr.write(BACKOFF_HINT)


def beat_here(env: dict[str, str], clock: Clock | None, force: bool) -> str:
    """One foreground beat; its outcome's status."""
    ctx = ctx_for(env, clock_for(env, clock), events_to="stderr")
    ensure_data_dir(ctx.paths)

    def on_int(_signum: int, _frame: FrameType | None) -> None:
        if not ctx.interrupt.deciding:
            raise KeyboardInterrupt  # no runner is deciding: the beat stops at once, as ever
        said = ctx.interrupt.press()  # a second abandons the decide
        if said is not None:  # unbuffered: the beat may be writing to stderr right now
            os.write(2, f"looop: Ctrl-C — {said}\n".encode())

    old = signal.signal(signal.SIGINT, on_int)
    try:
        out = tick_once(ctx, force)
    finally:
        signal.signal(signal.SIGINT, old)
        _deliver_notifications()
    if out.status in ("failed", "error"):
        return out.status
    try:  # a skip never reaches the beat's config gate: a script must still learn of it
        ctx.config()
    except LooopError as e:
        sys.stderr.write(f"looop: {' '.join(str(e).split())} — no beat can decide until then\n")
        return "error"
    return out.status


def _deliver_notifications() -> None:
    """A beat's notifications reach their endpoints before `looop tick` ends (bounded)."""
    notify = sys.modules.get("looop.human.notify")  # loaded only when the beat notified
    if notify is not None:
        notify.drain()
