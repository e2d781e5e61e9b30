"""A beat that raised (loop/tick.py): one line for the human and the model, the trace kept
for a developer, and the crash counted as a failure (backoff, LAST FAILURE, the streak alert).

Light on purpose: a crash can come before the gates end, and loads none of the decide path."""

from __future__ import annotations

import contextlib
import errno
import traceback

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.loop import alerts, guards
from looop.loop.beat import Beat, TickOutcome, resolve_config
from looop.loop.diskcheck import fullest

# errors of the disk, not of the code: a failed beat that says so, never a crash with a trace
_THE_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _from_the_disk(exc: BaseException) -> bool:
    """Whether an error was caused (at any depth) by one of the disk's errors."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _THE_DISK:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _fullest(ctx: Ctx, exc: OSError) -> str:
    """On a full disk, the worker keeping the most in its folders (loop/diskcheck)."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    who = fullest(ctx.paths)
    return f" — {who}" if who else ""


def crashed(b: Beat, exc: BaseException) -> TickOutcome:
    """A beat that raised: one line for the human and the model, the trace kept for a developer."""
    ctx, out = b.ctx, b.out
    trace = "".join(traceback.format_exception(exc))
    world = isinstance(exc, OSError) and exc.errno in _THE_DISK
    if isinstance(exc, LooopError):  # a refusal after the runner ran: its one line says it all
        error = f"beat failed: {' '.join(str(exc).split())}"[:500]
        if _from_the_disk(exc):
            trace = ""  # e.g. a move carried out whose record hit a full disk
    elif world:  # a full, read-only or failing disk: the world's fault, no trace to keep
        assert isinstance(exc, OSError)
        where = f" writing {exc.filename}" if exc.filename else ""
        error = f"beat failed: {exc.strerror or exc}{where}{_fullest(ctx, exc)}"[:500]
        trace = ""
    else:
        error = f"beat crashed: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    out.status, out.error = ("error" if b.dry_run else "failed"), error
    if out.run_id is not None and trace:
        with contextlib.suppress(OSError):
            store.atomic_write(ctx.paths.run_dir(out.run_id) / "crash.txt", trace)
    ctx.events.emit("error", "tick.crash", error, run_id=out.run_id)
    # the same event either way (status and the dashboard end the beat on it); a disk's
    # error carries no trace
    extra = {"trace": trace[-4000:]} if trace else {}
    ctx.events.record("tick_crash", error=error, run_id=out.run_id, **extra)
    if b.dry_run:
        return out
    try:
        _record_crash(b, error)
    except Exception as e:  # e.g. a full disk: the beat still ends, and says so
        ctx.events.emit("error", "tick.crash", f"could not record the failed beat: {e}")
    return out


def _record_crash(b: Beat, error: str) -> None:
    """A crashed beat counts as a failure: backoff, LAST FAILURE, the streak alert, result."""
    ctx, out, world = b.ctx, b.out, b.out.world
    # a crash before the config was resolved (seeding) resolves it now, for the alert knob
    knobs = b.knobs if b.knobs is not None else resolve_config(ctx)[2]
    now = ctx.clock.now()
    fails = guards.record_failure(
        ctx.paths,
        now,
        world.hash if world else "",
        world.policy_hash if world else "",
        ctx.clock.monotonic(),
    )
    guards.write_last_failure(ctx.paths, now, out.run_id or "", "tick.crash", error, fails)
    replay = ctx.paths.rel(ctx.paths.run_dir(out.run_id)) if out.run_id else "no run"
    alerts.failure_streak(ctx, fails, knobs.num("notify_failure_streak"), error, replay, b.cfg)
    ctx.events.record("tick_failed", run_id=out.run_id, code="tick.crash", reason=error)
    if out.run_id is not None:
        store.write_json(
            ctx.paths.run_dir(out.run_id) / "result.json",
            {
                "v": 1,
                "run_id": out.run_id,
                "status": "failed",
                "code": "tick.crash",
                "error": error,
                "ts": int(now),
            },
        )
