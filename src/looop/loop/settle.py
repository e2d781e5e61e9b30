"""How a beat ends after the runner: a move commits the world it was decided on; a failure
counts toward the backoff and is kept for the next prompt (a crash: loop/crashed.py)."""

from __future__ import annotations

from pathlib import Path

from looop.act.executor import Executed
from looop.core.context import Ctx
from looop.decide.runner import RunResult
from looop.home import store
from looop.home.errors import LooopError
from looop.home.eventnames import FailCode
from looop.loop import alerts, flap, guards, limited
from looop.loop.beat import SHELL_FOLLOW_UP_SECS, Beat, TickOutcome
from looop.spend import usd


def commit_move(b: Beat, executed: Executed, secs: int, metered: float | None) -> None:
    """The move ran: commit the world it was decided on, clear the failure state."""
    ctx, paths, out, world = b.ctx, b.ctx.paths, b.out, b.world
    now = ctx.clock.now()
    try:
        guards.commit_hash(paths, world.hash)
        guards.write_last_world(paths, now, world.items)
        # the decider was told its notices: once is enough; a move's effects are not flaps
        flap.settle_move(paths, b.flap_notes, executed.kind != "noop")
        limited.done(ctx)
        note_recovery(b, now)
        guards.clear_backoff(paths)
        guards.note_noop(paths, now, world.hash if executed.kind == "noop" else None)
        guards.set_next_wake(paths, now, executed.next_interval_s, b.k.num("max_next_interval"))
        store.remove(paths.last_failure)
        if executed.kind != "shell":
            store.remove(paths.last_shell)
    except OSError as e:
        # the move happened: say so, or a human (or the model) may do it twice
        raise LooopError(
            f"{executed.kind} ran and was journaled ({executed.journal}), but the beat could "
            f"not record it ({e.strerror or e}) — free space or fix permissions; do not "
            "repeat the move"
        ) from e
    ctx.events.emit(
        "ok",
        "tick.decided",
        f"{executed.kind} · {executed.journal} · {secs}s"
        + (f" · {usd(metered)}" if metered else ""),
        action=executed.kind,
        summary=executed.summary,
        journal=executed.journal,
        secs=secs,
        run_id=out.run_id,
        cost_usd=metered,
    )
    ctx.events.record("decided", run_id=out.run_id, action=executed.kind, journal=executed.journal)
    out.acted, out.status, out.executed = True, "decided", executed
    out.next_interval_s = executed.next_interval_s
    if executed.kind == "shell":
        out.follow_up_s = SHELL_FOLLOW_UP_SECS


def count_failure(b: Beat, code: FailCode, error: str, secs: int) -> None:
    """No move: count the failure (backoff), keep it for the next prompt, maybe alert."""
    ctx, paths, ev, out, world = b.ctx, b.ctx.paths, b.ctx.events, b.out, b.world
    run_id = out.run_id or ""
    now = ctx.clock.now()
    fails = guards.record_failure(paths, now, world.hash, world.policy_hash, ctx.clock.monotonic())
    guards.write_last_failure(paths, now, run_id, code, error, fails)
    replay = paths.rel(paths.run_dir(run_id))
    warn = code == "tick.no_decision"
    what = f"ran {secs}s but emitted no decision" if warn else f"beat failed after {secs}s"
    ev.emit(
        "warn" if warn else "error",
        code,
        f"{what} (fail #{fails}): {error} · replay: {replay}",
        secs=secs,
        run_id=run_id,
        fails=fails,
        error=error,
        **({} if warn else {"replay": replay}),
    )
    ev.record("tick_failed", run_id=run_id, code=code, reason=error, fails=fails)
    alerts.failure_streak(ctx, fails, b.k.num("notify_failure_streak"), error, replay, b.cfg)
    out.status, out.error = "failed", error


def note_recovery(b: Beat, now: float) -> None:
    """A success after a streak the human was told about says so; never fails the commit."""
    try:
        before = guards.read_backoff(b.ctx.paths, now, b.ctx.clock.monotonic())
    except Exception:
        return
    if before is not None:
        alerts.recovered(b.ctx, before.fails, b.k.num("notify_failure_streak"), b.cfg)


def write_result(
    ctx: Ctx, run_dir: Path, runner: str, result: RunResult, out: TickOutcome, code: str | None
) -> None:
    """runs/<id>/result.json: what `looop runs` lists without re-reading logs."""
    ex = out.executed
    store.write_json(
        run_dir / "result.json",
        {
            "v": 1,
            "run_id": out.run_id,
            "runner": runner,
            "status": out.status,
            "code": code,
            "error": out.error,
            "action": ex.kind if ex else None,
            "journal": ex.journal if ex else None,
            "secs": round(result.secs, 3),
            "exit_code": result.exit_code,
            "ts": int(ctx.clock.now()),
        },
    )
