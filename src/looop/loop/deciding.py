"""A beat past every gate (loop/tick.py): the spend breakers, the prompt, one metered runner
call, then the move parsed and executed and settled, or the failure counted. tick.py's one
door, loaded only when the world changed, so a skip beat never pays for the spend policy, the
runner, the executor, the prompt or settling this imports. Settling: a move commits the
world it was decided on; a failure counts toward the backoff and is kept for the next prompt."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from looop.act.actiontable import taught
from looop.act.decision import DecisionError
from looop.act.executor import discard_decision, execute, take_decision
from looop.act.outcome import ExecError, Executed
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.decide import spend
from looop.decide.order import write_shown
from looop.decide.prompt import PromptExtras, build_prompt
from looop.decide.runner import RunResult
from looop.home import store
from looop.home.errors import LooopError
from looop.home.eventnames import FailCode
from looop.loop import alerts, flap, guards, windowwork
from looop.loop.asks import asks_section
from looop.loop.beat import SHELL_FOLLOW_UP_SECS, Beat, TickOutcome, new_run_id, prune_runs
from looop.loop.world import describe_changes
from looop.spend import usd
from looop.spend.limits import find_limit

LastWorld = Callable[[], dict[str, str] | None]  # the world the decider last saw, read once


def decide(b: Beat, last_world: LastWorld) -> TickOutcome:
    """The spend breakers, the prompt, one metered runner call, then commit the move or count
    the failure."""
    ctx, out, runner = b.ctx, b.out, b.runner
    assert runner is not None and b.cfg is not None
    stopped = _breakers(b)
    if stopped is not None:
        return stopped
    answer = spend.decision_file(ctx, runner, b.cfg)
    if _write_prompt(b, last_world, answer):
        return out  # a dry run stops at the prompt
    assert out.run_id is not None and out.prompt_path is not None
    run_id, run_dir = out.run_id, ctx.paths.run_dir(out.run_id)
    ctx.events.emit(
        "step",
        "tick.start",
        f"{runner.name} is deciding the one move",
        runner=runner.name,
        run_id=run_id,
    )
    ctx.events.record("decide_start", runner=runner.name, run_id=run_id)
    out.decided = True
    tee = [run_dir / "output.log", ctx.paths.tick_log]
    ctx.interrupt.deciding = runner.name  # what a first Ctrl-C says the beat waits for
    try:
        result, metered, limit = spend.run_metered(
            ctx, b.k, b.cfg, runner, out.prompt_path, tee, run_id
        )
    finally:
        ctx.interrupt.deciding = ""
    if ctx.interrupt.abandon.is_set():  # a human's second stop: no move, no failure counted
        discard_decision(answer)
        ctx.events.emit("warn", "tick.abandoned", f"beat abandoned: {result.error}", run_id=run_id)
        ctx.events.record("decide_abandoned", run_id=run_id, reason=result.error)
        out.status = "abandoned"
        write_result(ctx, run_dir, runner.name, result, out, "tick.abandoned")
        return out
    code, error, executed = _consume(b, result, answer)
    if executed is not None:
        commit_move(b, executed, int(result.secs), metered)
    else:
        assert code is not None and error is not None
        if limit is None:  # the retry check, when it ran, already read this output
            limit = find_limit(result.tail + "\n" + (result.error or ""), b.ctx.clock)
        if limit is not None:  # a usage window: wait for its reset, count no failure
            out.status, out.error = "limited", windowwork.record(b, limit, runner.name)
        else:
            count_failure(b, code, error, int(result.secs))
    write_result(ctx, run_dir, runner.name, result, out, code)
    prune_runs(ctx, b.k.num("runs_keep"))
    return out


def _breakers(b: Beat) -> TickOutcome | None:
    """Spend breakers (decide/spend), the beat's last gate: an open one is a pulse line, a
    record, one alert."""
    if b.dry_run:
        return None
    assert b.runner is not None
    hit = spend.open_breaker(b.ctx, b.k, b.runner)
    if hit is None:
        alerts.clear_alerts(b.ctx)  # past every breaker: a later opening is news again
        return None
    b.ctx.events.emit("warn", hit.event, hit.message, **hit.fields)
    b.ctx.events.record(hit.record, **hit.fields)
    alerts.raise_alert(b.ctx, hit.alert_key, hit.alert, b.cfg)
    return b.stop(hit.status, hit.error)


def _extras(b: Beat, last_world: LastWorld, answer: Path) -> PromptExtras:
    ctx = b.ctx
    # the flap step this beat already read (and wrote) the notices; a dry run took none
    b.flap_notes = b.flap.notes if b.flap is not None else flap.read_notes(ctx.paths)
    changes = describe_changes(last_world(), b.world.items)
    if b.forced_unchanged is not None:  # say so, or the model hunts for a change that is not there
        changes = [
            f"nothing changed since your last decision: this is a forced re-decide "
            f"({b.forced_unchanged})",
            *changes,
        ]
    return PromptExtras(
        actions=taught(),
        changes=changes,
        last_failure=guards.read_last_failure(ctx.paths),
        last_shell=guards.read_record(ctx.paths.last_shell),  # removed once seen
        flapping=b.out.flapping,
        flap_notes=b.flap_notes,
        asks=asks_section(ctx),
        provider_limit=alerts.limit_note(ctx),
        decision_file=str(answer),
    )


def _write_prompt(b: Beat, last_world: LastWorld, answer: Path) -> bool:
    """Build the prompt, naming the decision file `answer`; a dry run keeps its text and stops
    (True). Otherwise a new run dir holds it, and a leftover decision is removed before the
    runner starts (the data dir's too: one file, the one the prompt names, is read)."""
    ctx, ev, out = b.ctx, b.ctx.events, b.out
    built = build_prompt(ctx, b.k, _extras(b, last_world, answer), b.snapshot)
    if built.truncated:
        ev.emit(
            "warn",
            "tick.prompt_oversize",
            "prompt cut to fit: " + "; ".join(built.truncated),
            cuts=built.truncated,
        )
    if b.dry_run:
        out.status, out.prompt_text = "dry-run", built.text
        return True
    run_id = new_run_id(ctx)
    run_dir = ctx.paths.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    prompt_path = run_dir / "prompt.md"
    store.atomic_write(prompt_path, built.text)
    # the next prompt keeps this one's order, so the provider's cached prefix holds (a saving
    # only: else the next prompt comes in name order)
    with contextlib.suppress(OSError):
        write_shown(ctx.paths.data, built.shown)
    out.run_id, out.prompt_path = run_id, prompt_path
    if built.truncated:
        ev.record("prompt_oversize", run_id=run_id, cuts=built.truncated)
    if discard_decision(answer) | discard_decision(ctx.paths.decision):
        ev.emit(
            "warn",
            "tick.stale_decision",
            "removed a .decision.json left by an earlier run — it will not be executed",
        )
        ev.record("stale_decision", run_id=run_id)
    return False


def _consume(
    b: Beat, result: RunResult, answer: Path
) -> tuple[FailCode | None, str | None, Executed | None]:
    """(failure code, one-line error, executed) — exactly one of error/executed is set. The
    move runs under the beat's config (shell policy), not one edited since."""
    ctx = b.ctx
    if not result.ok:
        if discard_decision(answer):
            ctx.events.record("stale_decision", reason="runner failed after writing it")
        return "tick.failed", result.error or "runner failed", None
    try:
        raw = take_decision(ctx, answer)
    except ExecError as e:
        return "tick.failed", str(e), None
    if raw is not None and b.out.run_id is not None:  # what `runs replay` compares with
        with contextlib.suppress(OSError):  # a record only: the move itself goes on
            store.atomic_write(ctx.paths.run_dir(b.out.run_id) / "decision.json", raw)
    if raw is None:
        why, where = "the runner exited 0 but wrote no .decision.json", ctx.paths.rel(answer)
        if where != ".decision.json":  # one not in the data dir names where it goes
            why += f" at {where} ($LOOOP_DECISION)"
        if result.error:
            why += f" (stream reported: {result.error})"
        return "tick.no_decision", why, None
    try:
        decision = parse_decision(raw)
    except DecisionError as e:
        return "tick.failed", f"bad decision: {e}", None
    try:
        executed = execute(ctx, b.k, decision, cfg=b.cfg)
    except (ExecError, LooopError) as e:
        return "tick.failed", f"{decision.action.kind} failed: {e}", None
    return None, None, executed


def commit_move(b: Beat, executed: Executed, secs: int, metered: float | None) -> None:
    """The move ran: commit the world it was decided on, clear the failure state."""
    ctx, paths, out, world = b.ctx, b.ctx.paths, b.out, b.world
    now = ctx.clock.now()
    try:
        guards.commit_hash(paths, world.hash)
        guards.write_last_world(paths, now, world.items)
        # the decider was told its notices: once is enough; a move's effects are not flaps
        flap.settle_move(paths, b.flap_notes, executed.kind != "noop")
        alerts.limit_done(ctx)
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
