"""One beat: sense -> hash -> gate -> prompt -> runner -> one decision -> journal -> commit."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looop.act.actions import DecisionError, kind_of, parse_decision
from looop.act.executor import (
    ExecError,
    Executed,
    check_interrupted,
    discard_decision,
    execute,
    take_decision,
)
from looop.core import store
from looop.core.config import Knobs, Runner
from looop.core.context import Ctx
from looop.core.errors import CorruptState, LooopError
from looop.core.paths import Paths
from looop.decide.prompt import PromptExtras, build_prompt
from looop.decide.runner import RunResult, run_runner
from looop.loop import alerts, guards
from looop.loop.asks import asks_section
from looop.loop.world import World, describe_changes, read_world
from looop.seed import ensure_data_dir
from looop.sense import sense

SHELL_FOLLOW_UP_SECS = 5


@dataclass
class TickOutcome:
    """What one beat produced, for the pulse's cadence choice."""

    acted: bool = False
    decided: bool = False  # a runner was called (success or failure)
    next_interval_s: int | None = None
    follow_up_s: int | None = None
    status: str = "idle"  # skip | backoff | error | decided | failed | dry-run
    run_id: str | None = None
    executed: Executed | None = None
    error: str | None = None
    prompt_path: Path | None = None
    prompt_text: str | None = None
    flapping: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    world: World | None = None  # as sensed this beat, once known


def new_run_id(ctx: Ctx) -> str:
    """tick-YYYYmmdd-HHMMSS, with a -N suffix when two beats share a second."""
    base = "tick-" + ctx.clock.local().strftime("%Y%m%d-%H%M%S")
    run_id, n = base, 1
    while ctx.paths.run_dir(run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def prune_runs(ctx: Ctx, keep: int) -> None:
    if keep <= 0:
        return
    try:
        runs = [p for p in ctx.paths.runs.iterdir() if p.is_dir()]
    except OSError:
        return
    runs.sort(key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


class DryRunPaths(Paths):
    """The data dir as it is, except that snapshots go to a scratch dir: `tick --dry-run`
    senses for real but writes nothing into the data dir."""

    __slots__ = ("scratch",)
    scratch: Path

    def __init__(self, base: Paths, scratch: Path) -> None:
        super().__init__(base.data, base.config)
        object.__setattr__(self, "scratch", scratch)

    @property
    def snapshots(self) -> Path:
        return self.scratch


def dry_run_ctx(ctx: Ctx, scratch: Path) -> Ctx:
    """A Ctx for a dry run: snapshots in `scratch` (seeded with the current ones so cached
    sensors keep their reading), no events.jsonl lines."""
    from dataclasses import replace

    with contextlib.suppress(OSError):
        for snap in ctx.paths.snapshots.glob("*.json"):
            shutil.copy2(snap, scratch / snap.name)
    events = replace(ctx.events, events_path=None)
    return replace(ctx, paths=DryRunPaths(ctx.paths, scratch), events=events)


def tick(
    ctx: Ctx, force: bool = False, dry_run: bool = False, override_backoff: bool = False
) -> TickOutcome:
    """One beat (reference core §7 with the SPEC §3 decisions); never raises but LooopError.

    Any other exception is a failed beat like a bad decision: backoff armed, LAST FAILURE for
    the next prompt, the failure-streak alert. Without that, a crash after the runner would
    pay the runner again every beat and the model would never learn why.

    dry_run: pass a `dry_run_ctx`; the beat then skips every write (housekeeping, flapping,
    seeding). override_backoff: a human's `tick --force` runs now despite failures."""
    out = TickOutcome()
    try:
        return _beat(ctx, force, dry_run, out, override_backoff)
    except LooopError as e:
        if not out.decided:
            raise  # before the runner: the caller shows the one line (bad config, data dir)
        return _crashed(ctx, out, e, dry_run)
    except Exception as e:
        return _crashed(ctx, out, e, dry_run)


def _crashed(ctx: Ctx, out: TickOutcome, exc: BaseException, dry_run: bool) -> TickOutcome:
    """A beat that raised: one line for the human and the model, the trace kept for a developer."""
    import traceback

    trace = "".join(traceback.format_exception(exc))
    if isinstance(exc, LooopError):  # a refusal after the runner ran: its one line says it all
        error = f"beat failed: {' '.join(str(exc).split())}"[:500]
    else:
        error = f"beat crashed: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    out.status, out.error = ("error" if dry_run else "failed"), error
    if out.run_id is not None:
        with contextlib.suppress(OSError):
            store.atomic_write(ctx.paths.run_dir(out.run_id) / "crash.txt", trace)
    ctx.events.emit("error", "tick.crash", error, run_id=out.run_id)
    ctx.events.record("tick_crash", error=error, run_id=out.run_id, trace=trace[-4000:])
    if dry_run:
        return out
    try:
        knobs = ctx.knobs(ctx.config())
    except Exception:
        knobs = ctx.knobs(None)
    world = out.world
    try:
        now = ctx.clock.now()
        fails = guards.record_failure(
            ctx.paths, now, world.hash if world else "", world.policy_hash if world else ""
        )
        guards.write_last_failure(ctx.paths, now, out.run_id or "", "tick.crash", error, fails)
        replay = ctx.paths.rel(ctx.paths.run_dir(out.run_id)) if out.run_id else "no run"
        alerts.failure_streak(ctx, fails, knobs.num("notify_failure_streak"), error, replay)
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
    except Exception as e:  # e.g. a full disk: the beat still ends, and says so
        ctx.events.emit("error", "tick.crash", f"could not record the failed beat: {e}")
    return out


def _beat(
    ctx: Ctx, force: bool, dry_run: bool, out: TickOutcome, override_backoff: bool = False
) -> TickOutcome:
    ev = ctx.events
    if not dry_run:
        ensure_data_dir(ctx.paths)
        ev.record("tick_start", forced=force)
    try:
        cfg = ctx.config()
        cfg_error: str | None = None
    except LooopError as e:
        cfg, cfg_error = None, str(e)
    knobs = ctx.knobs(cfg)

    if not dry_run:
        # housekeeping: a side effect interrupted by a crash is reported once, never re-run
        check_interrupted(ctx)
        housekeep_sessions(ctx, knobs)

    readings = sense(ctx, knobs)
    out.notes = [r.name for r in readings if not r.ok]
    stale = [r for r in readings if r.unrecorded]
    if stale:
        # An unwritten snapshot leaves the last beat's reading on disk: deciding (or skipping)
        # on that would act on a world that is no longer true.
        msg = (
            f"cannot record the world ({stale[0].error}"
            + (f"; {len(stale) - 1} more" if len(stale) > 1 else "")
            + ") — free space or fix permissions in the data dir; no decision on a stale world"
        )
        ev.emit("error", "tick.error", msg, unrecorded=[r.name for r in stale])
        ev.record("tick_unrecorded", sensors=[r.name for r in stale])
        out.status, out.error = "error", msg
        return out
    world = read_world(ctx.paths)
    out.world = world
    flapping: list[str] = []
    new: list[str] = []
    if not dry_run:
        flapping, new = guards.track_flapping(ctx.paths, world.items, knobs.num("flap_streak"))
    for name in new:
        ctx.events.emit(
            "warn",
            "sense.flapping",
            f"{name}'s signal changed {knobs.num('flap_streak')} beats in a row — "
            "move timestamps and counters into its detail",
            sensor=name,
        )
        ctx.events.record("sensor_flapping", sensor=name)
    out.flapping = flapping

    try:
        last = guards.read_last_hash(ctx.paths)
    except CorruptState as e:
        ev.emit("error", "tick.error", f"guard state unreadable, idling: {e}")
        ev.record("guard_corrupt", error=str(e))
        out.status, out.error = "error", str(e)
        return out
    if world.hash == last and not force and not dry_run:
        if guards.noop_expired(ctx.paths, world.hash, ctx.clock.now(), knobs.num("noop_ttl")):
            ev.emit(
                "info",
                "tick.revisit",
                "world unchanged, but the last noop on it is older "
                "than LOOOP_NOOP_TTL — deciding again",
            )
            ev.record("noop_revisit")
            force = True
        else:
            ev.emit("info", "tick.skip", "world unchanged — no AI call")
            ev.record("world_unchanged")
            out.status = "skip"
            return out
    if world.hash == last and force:
        ev.emit("info", "tick.forced", "world unchanged but re-deciding (nudge or first beat)")

    now = ctx.clock.now()
    if not dry_run:
        b = guards.read_backoff(ctx.paths, now)
        if b is not None and b.fails > 0:
            wait = guards.backoff_delay(b.fails, knobs.num("backoff_max_secs"))
            remain = int(wait - (now - b.ts))
            if remain > 0 and override_backoff:
                ev.emit(
                    "warn",
                    "tick.backoff_override",
                    f"forced: running now despite {b.fails} failed beat(s) "
                    f"(the backoff wanted ~{remain}s more)",
                    fails=b.fails,
                    retry_in_s=remain,
                )
                ev.record("tick_backoff_override", fails=b.fails)
                remain = 0
            if b.repaired:
                ev.emit(
                    "warn",
                    "tick.backoff_repaired",
                    f"backoff record was unreadable; assuming {b.fails} failures",
                )
            if remain > 0 and b.phash and b.phash != world.policy_hash:
                ev.emit(
                    "info",
                    "tick.backoff_cut",
                    "PLAYBOOK or goals edited since the failure — retrying now",
                )
                ev.record("tick_backoff_cut", fails=b.fails)
            elif remain > 0:
                ev.emit(
                    "warn",
                    "tick.backoff",
                    f"last {b.fails} beat(s) failed — retry in ~{remain}s "
                    "(editing PLAYBOOK or goals retries now)",
                    fails=b.fails,
                    retry_in_s=remain,
                )
                ev.record("tick_backoff", fails=b.fails, retry_in_s=remain)
                out.status = "backoff"
                return out

    # config and runner problems cost no AI and arm no backoff: they retry every beat
    if cfg is None:
        ev.emit("error", "tick.error", f"config: {cfg_error}")
        ev.record("tick_error", reason=f"config: {cfg_error}")
        out.status, out.error = "error", cfg_error
        return out
    runner = cfg.runner()
    if runner is None or not runner.tick:
        name = cfg.default or "?"
        msg = f"no tick command for runner '{name}' in {cfg.source} — run `looop init`"
        ev.emit("error", "tick.error", msg, runner=name)
        ev.record("tick_error", reason=msg)
        out.status, out.error = "error", msg
        return out

    if not dry_run:
        if _breaker_open(ctx, knobs, runner, out):
            return out
        alerts.clear_alerts(ctx)  # past every breaker: a later opening is news again
    return _decide(ctx, knobs, world, runner, out, dry_run)


def _trip(
    ctx: Ctx,
    out: TickOutcome,
    status: tuple[str, str],
    event: tuple[str, str, str],
    alert: tuple[str, str],
    **fields: Any,
) -> bool:
    """A breaker is open: its pulse line and record, the beat's outcome, one human alert.

    status = (status, error); event = (pulse event, message, durable record); alert = (key,
    message)."""
    name, msg, record = event
    ctx.events.emit("warn", name, msg, **fields)
    ctx.events.record(record, **fields)
    out.status, out.error = status
    alerts.raise_alert(ctx, *alert)
    return True


def _breaker_open(ctx: Ctx, knobs: Knobs, runner: Runner, out: TickOutcome) -> bool:
    """Spend guards: daily budget, fail-closed unmetered runner, hourly decide cap."""
    from looop.decide import cost

    paths, now = ctx.paths, ctx.clock.now()
    budget = cost.daily_budget(knobs)
    if budget is not None:
        spent = cost.spent_on_day(paths, ctx.clock)
        if spent >= budget:
            of = f"{cost.usd(spent)} of {cost.usd(budget)}"
            return _trip(
                ctx,
                out,
                ("budget", f"daily budget reached ({cost.usd(spent)})"),
                (
                    "tick.budget",
                    f"daily budget reached ({of}) — no AI until local midnight; raise "
                    "max_daily_usd (or LOOOP_MAX_DAILY_USD) to go on",
                    "budget_exceeded",
                ),
                (
                    "budget",
                    f"daily budget reached ({of}): the pulse makes no AI calls until local "
                    "midnight. Raise max_daily_usd to go on.",
                ),
                spent_usd=spent,
                max_daily_usd=budget,
            )
        if cost.unmetered_blocked(paths, cost.runner_signature(runner)):
            name = runner.name
            return _trip(
                ctx,
                out,
                ("budget", f"runner '{name}' is unmetered"),
                (
                    "tick.budget_unmetered",
                    f"runner '{name}' reported no cost {cost.UNMETERED_LIMIT} runs in a row "
                    f"while a budget is set — no AI; declare runners.{name}.cost in the "
                    "config, or set max_daily_usd to 0",
                    "budget_unmetered",
                ),
                (
                    "unmetered",
                    f"runner '{name}' reports no cost while a daily budget is set: the pulse "
                    f"makes no AI calls. Declare runners.{name}.cost in the config, or set "
                    "max_daily_usd to 0.",
                ),
                runner=name,
            )
    cap = knobs.num("max_decides_per_hour")
    if cap > 0:
        n = cost.decides_last_hour(paths, now, cap)
        if n >= cap:
            return _trip(
                ctx,
                out,
                ("capped", f"hourly decide cap ({n}/{cap})"),
                (
                    "tick.capped",
                    f"hourly decide cap reached ({n}/{cap}) — no AI this beat; raise "
                    "LOOOP_MAX_DECIDES_PER_HOUR or wait for the hour to roll",
                    "decide_capped",
                ),
                (
                    "capped",
                    f"the loop decided {n} times in the last hour (cap {cap}): something keeps "
                    "changing the world. It resumes as the hour rolls; see `looop journal`.",
                ),
                decides=n,
                cap=cap,
            )
    return False


def housekeep_sessions(ctx: Ctx, knobs: Knobs) -> None:
    """Reap corpses past their retention, then run verify post-conditions of dead workers."""
    from looop.act.shell import run_shell
    from looop.sessions import list_sessions, prune_aged
    from looop.workers.launch import end_generation
    from looop.workers.verify import run_pending_verifies

    try:
        # before any reaping
        run_pending_verifies(ctx, knobs, list_sessions(ctx.paths.data), run_shell)
        from looop.human.leases import reap_stale, session_alive

        for claim_file, holder in reap_stale(ctx.paths.claims, session_alive(ctx.paths.data)):
            ctx.events.emit(
                "info",
                "claim.reaped",
                f"released {claim_file}: holder '{holder or '?'}' is gone",
                claim=claim_file,
                session=holder,
            )
            ctx.events.record("claim_reaped", claim=claim_file, session=holder)
        for sid in prune_aged(ctx.paths.data, float(knobs.num("session_ttl")), ctx.clock.now()):
            end_generation(ctx, sid)
            ctx.events.record("session_reaped", id=sid)
    except OSError as e:
        ctx.events.emit("warn", "fleet.degraded", f"could not tend sessions: {e}")


def _extras(ctx: Ctx, world: World, flapping: list[str]) -> PromptExtras:
    return PromptExtras(
        changes=describe_changes(guards.read_last_world(ctx.paths), world.items),
        last_failure=guards.read_last_failure(ctx.paths),
        last_shell=guards.read_last_shell(ctx.paths),
        flapping=flapping,
        asks=asks_section(ctx),
    )


def _decide(
    ctx: Ctx, knobs: Knobs, world: World, runner: Runner, out: TickOutcome, dry_run: bool
) -> TickOutcome:
    runner_name = runner.name
    command = runner.tick or ""
    ev = ctx.events
    paths = ctx.paths
    built = build_prompt(ctx, knobs, _extras(ctx, world, out.flapping))
    if built.truncated:
        ev.emit(
            "warn",
            "tick.prompt_oversize",
            "prompt cut to fit: " + "; ".join(built.truncated),
            cuts=built.truncated,
        )
    if dry_run:
        out.status, out.prompt_text = "dry-run", built.text
        return out
    run_id = new_run_id(ctx)
    run_dir = paths.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    prompt_path = run_dir / "prompt.md"
    store.atomic_write(prompt_path, built.text)
    out.run_id, out.prompt_path = run_id, prompt_path
    if built.truncated:
        ev.record("prompt_oversize", run_id=run_id, cuts=built.truncated)

    if discard_decision(paths.decision):
        ev.emit(
            "warn",
            "tick.stale_decision",
            "removed a .decision.json left by an earlier run — it will not be executed",
        )
        ev.record("stale_decision", run_id=run_id)

    ev.emit(
        "step",
        "tick.start",
        f"{runner_name} is deciding the one move",
        runner=runner_name,
        run_id=run_id,
    )
    ev.record("decide_start", runner=runner_name, run_id=run_id)
    out.decided = True
    result, metered = _run_metered(
        ctx, knobs, runner, command, prompt_path, [run_dir / "output.log", paths.tick_log], run_id
    )
    secs = int(result.secs)

    code, error, executed = _consume(ctx, knobs, result)
    if executed is not None:
        now = ctx.clock.now()
        try:
            guards.commit_hash(paths, world.hash)
            guards.write_last_world(paths, now, world.items)
            _note_recovery(ctx, knobs, now)
            guards.clear_backoff(paths)
            guards.note_noop(paths, now, world.hash if executed.kind == "noop" else None)
            guards.set_next_wake(
                paths, now, executed.next_interval_s, knobs.num("max_next_interval")
            )
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
        ev.emit(
            "ok",
            "tick.decided",
            f"{executed.kind} · {executed.journal} · {secs}s"
            + (f" · {_usd(metered)}" if metered else ""),
            action=executed.kind,
            summary=executed.summary,
            journal=executed.journal,
            secs=secs,
            run_id=run_id,
            cost_usd=metered,
        )
        ev.record("decided", run_id=run_id, action=executed.kind, journal=executed.journal)
        out.acted, out.status, out.executed = True, "decided", executed
        out.next_interval_s = executed.next_interval_s
        if executed.kind == "shell":
            out.follow_up_s = SHELL_FOLLOW_UP_SECS
    else:
        assert code is not None and error is not None
        now = ctx.clock.now()
        fails = guards.record_failure(paths, now, world.hash, world.policy_hash)
        guards.write_last_failure(paths, now, run_id, code, error, fails)
        replay = paths.rel(run_dir)
        if code == "tick.no_decision":
            ev.emit(
                "warn",
                code,
                f"ran {secs}s but emitted no decision (fail #{fails}): {error} · replay: {replay}",
                secs=secs,
                run_id=run_id,
                fails=fails,
                error=error,
            )
        else:
            ev.emit(
                "error",
                code,
                f"beat failed after {secs}s (fail #{fails}): {error} · replay: {replay}",
                secs=secs,
                run_id=run_id,
                fails=fails,
                error=error,
                replay=replay,
            )
        ev.record("tick_failed", run_id=run_id, code=code, reason=error, fails=fails)
        alerts.failure_streak(ctx, fails, knobs.num("notify_failure_streak"), error, replay)
        out.status, out.error = "failed", error
    _write_result(ctx, run_dir, runner_name, result, out, code)
    prune_runs(ctx, knobs.num("runs_keep"))
    return out


def _note_recovery(ctx: Ctx, knobs: Knobs, now: float) -> None:
    try:
        before = guards.read_backoff(ctx.paths, now)
    except Exception:
        return
    if before is not None:
        alerts.recovered(ctx, before.fails, knobs.num("notify_failure_streak"))


def _write_result(
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


def _usd(x: float) -> str:
    from looop.decide.cost import usd

    return usd(x)


def _run_metered(
    ctx: Ctx,
    knobs: Knobs,
    runner: Runner,
    command: str,
    prompt_path: Path,
    tee: list[Path],
    run_id: str,
) -> tuple[RunResult, float | None]:
    """Run (and retry on a matched provider error), metering every attempt into the ledger."""
    import re

    from looop.decide import cost

    paths = ctx.paths
    prices = ctx.config().raw.get("prices")
    retries = knobs.num("runner_retries")
    match = ctx.env.get("LOOOP_RUNNER_RETRY_MATCH", "").strip()
    try:
        pattern = re.compile(match, re.IGNORECASE) if match else None
    except re.error:
        ctx.warn_once(f"ignoring LOOOP_RUNNER_RETRY_MATCH={match!r}: not a valid regex")
        pattern = None
    total: float | None = None
    attempt = 0
    while True:
        attempt += 1
        cost.note_decide(paths, ctx.clock.now())
        meter = cost.CostMeter(runner, prices if isinstance(prices, dict) else None)
        result = run_runner(
            ctx,
            command,
            prompt_path,
            tee,
            float(knobs.num("tick_timeout_secs")),
            on_line=meter.feed,
        )
        got = meter.total()
        if got is not None:
            total = (total or 0.0) + got
        retry = (
            pattern is not None
            and attempt <= retries
            and not os.path.lexists(paths.decision)
            and pattern.search(result.tail + "\n" + (result.error or "")) is not None
        )
        if not retry:
            break
        wait = knobs.num("runner_retry_sleep") * attempt
        ctx.events.emit(
            "warn",
            "tick.retry",
            f"runner hit a matched provider error (attempt {attempt}); retrying in {wait}s",
            attempt=attempt,
            run_id=run_id,
        )
        ctx.events.record("runner_retry", run_id=run_id, attempt=attempt)
        import time

        time.sleep(wait)
    if total is not None and total > 0:
        cost.record_cost(paths, ctx.clock.now(), "tick", run_id, runner.name, total)
    if result.ok and cost.daily_budget(knobs) is not None:
        sig = cost.runner_signature(runner)
        if total is None:
            n = cost.record_unmetered(paths, sig)
            lim = cost.UNMETERED_LIMIT
            tail = "breaker now open" if n >= lim else f"{n}/{lim} before the breaker opens"
            ctx.events.emit(
                "warn",
                "tick.unmetered",
                f"runner '{runner.name}' reported no cost ({tail}) — declare "
                f"runners.{runner.name}.cost in the config",
                runner=runner.name,
                count=n,
            )
        else:
            cost.clear_unmetered(paths)
    return result, total


def _consume(
    ctx: Ctx, knobs: Knobs, result: RunResult
) -> tuple[str | None, str | None, Executed | None]:
    """(failure code, one-line error, executed) — exactly one of error/executed is set."""
    paths = ctx.paths
    if not result.ok:
        if discard_decision(paths.decision):
            ctx.events.record("stale_decision", reason="runner failed after writing it")
        return "tick.failed", result.error or "runner failed", None
    try:
        raw = take_decision(ctx)
    except ExecError as e:
        return "tick.failed", str(e), None
    if raw is None:
        why = "the runner exited 0 but wrote no .decision.json"
        if result.error:
            why += f" (stream reported: {result.error})"
        return "tick.no_decision", why, None
    try:
        decision = parse_decision(raw)
    except DecisionError as e:
        return "tick.failed", f"bad decision: {e}", None
    try:
        executed = execute(ctx, knobs, decision)
    except (ExecError, LooopError) as e:
        return "tick.failed", f"{kind_of(decision.action)} failed: {e}", None
    return None, None, executed
