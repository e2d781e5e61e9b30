"""Spend policy for one beat: the breakers that stop a decide before it costs anything, and
the metered runner call (retries on a matched provider error, every attempt in the ledger).

Rooms below the loop only: a breaker comes back as data, and the loop reports it (pulse
line, record, the human alert) the way it reports every other gate."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looop.core.context import Ctx
from looop.decide.runner import RunResult, run_runner
from looop.home.config import Config, Knobs, Runner
from looop.home.sandboxpolicy import resolve
from looop.spend import statusspend, usd
from looop.spend.limits import find_limit
from looop.spend.meter import CostMeter
from looop.spend.record import append_cost
from looop.spend.savings import note_decide
from looop.spend.statusspend import (
    UNMETERED_LIMIT,
    clear_unmetered,
    daily_budget,
    decide_cap,
    record_unmetered,
    reports_cost,
    runner_signature,
    spent_today,
    unmetered_armed,
    unmetered_blocked,
)

if TYPE_CHECKING:
    from looop.home.sandboxpolicy import SandboxPolicy
    from looop.spend.limits import Limit


@dataclass(frozen=True)
class Breaker:
    """An open breaker: the beat's status and error, its pulse line and durable record, and
    the one alert a human gets per opening."""

    status: str  # budget | capped
    error: str
    event: str
    message: str
    record: str
    alert_key: str
    alert: str
    fields: dict[str, Any] = field(default_factory=dict)


def open_breaker(ctx: Ctx, knobs: Knobs, runner: Runner) -> Breaker | None:
    """Spend guards in order: daily budget, fail-closed unmetered runner (only while a budget
    is set: unmetered_armed), hourly decide cap. None when the beat may pay for a decide."""
    budget = daily_budget(knobs)
    if budget is not None:
        armed = unmetered_armed(knobs, reports_cost(runner))
        hit = _budget_breaker(ctx, runner, budget, armed)
        if hit is not None:
            return hit
    return _cap_breaker(ctx, knobs)


def _budget_breaker(ctx: Ctx, runner: Runner, budget: float, armed: bool) -> Breaker | None:
    spent = spent_today(os.fspath(ctx.paths.data), ctx.clock)[0]
    if spent >= budget:
        of = f"{usd(spent)} of {usd(budget)}"
        return Breaker(
            "budget",
            f"daily budget reached ({usd(spent)})",
            "tick.budget",
            f"daily budget reached ({of}) — no AI until local midnight; raise "
            "max_daily_usd (or LOOOP_MAX_DAILY_USD) to go on",
            "budget_exceeded",
            "budget",
            f"daily budget reached ({of}): the pulse makes no AI calls until local "
            "midnight. Raise max_daily_usd to go on.",
            {"spent_usd": spent, "max_daily_usd": budget},
        )
    if armed and unmetered_blocked(os.fspath(ctx.paths.data), runner_signature(runner)):
        name = runner.name
        return Breaker(
            "budget",
            f"runner '{name}' is unmetered",
            "tick.budget_unmetered",
            f"runner '{name}' reported no cost {UNMETERED_LIMIT} runs in a row "
            f"while a budget is set — no AI; declare runners.{name}.cost in the "
            "config, or set max_daily_usd to 0",
            "budget_unmetered",
            "unmetered",
            f"runner '{name}' reports no cost while a daily budget is set: the pulse "
            f"makes no AI calls. Declare runners.{name}.cost in the config, or set "
            "max_daily_usd to 0.",
            {"runner": name},
        )
    return None


def _cap_breaker(ctx: Ctx, knobs: Knobs) -> Breaker | None:
    cap = knobs.num("max_decides_per_hour")
    if cap <= 0:
        return None
    n = decide_cap(os.fspath(ctx.paths.data), ctx.clock.now(), cap)[0]
    if n < cap:
        return None
    return Breaker(
        "capped",
        f"hourly decide cap ({n}/{cap})",
        "tick.capped",
        f"hourly decide cap reached ({n}/{cap}) — no AI this beat; raise "
        "LOOOP_MAX_DECIDES_PER_HOUR or wait for the hour to roll",
        "decide_capped",
        "capped",
        f"the loop decided {n} times in the last hour (cap {cap}): something keeps "
        "changing the world. It resumes as the hour rolls; see `looop journal`.",
        {"decides": n, "cap": cap},
    )


def run_metered(
    ctx: Ctx,
    knobs: Knobs,
    cfg: Config,
    runner: Runner,
    prompt_path: Path,
    tee: list[Path],
    run_id: str,
) -> tuple[RunResult, float | None, Limit | None]:
    """Run the runner's tick command (and retry on a matched provider error), metering every
    attempt into the ledger; prices come from the beat's own config. The Limit: the usage
    limit found in the last attempt's output when it was read for one (else None: not read,
    or none there)."""
    paths = ctx.paths
    prices = cfg.raw.get("prices")
    retries = knobs.num("runner_retries")
    pattern = _retry_pattern(ctx)
    policy = _sandbox_policy(runner, cfg)
    answer = decision_file(ctx, runner, cfg)
    total: float | None = None
    attempt = 0
    limit: Limit | None = None
    while True:
        attempt += 1
        statusspend.note_decide(os.fspath(paths.data), ctx.clock.now())
        meter = CostMeter(runner, prices if isinstance(prices, dict) else None)
        result = run_runner(
            ctx,
            runner.tick or "",
            prompt_path,
            tee,
            float(knobs.num("tick_timeout_secs")),
            on_line=meter.feed,
            sandbox=policy,
            runner=runner.name,
        )
        got = meter.total()
        if got is not None:
            total = (total or 0.0) + got
        said = result.tail + "\n" + (result.error or "")
        # a matched provider error, retries left, and no decision written yet
        if pattern is None or attempt > retries or os.path.lexists(answer):
            break
        if pattern.search(said) is None:
            break
        # a usage window with a reset time: retrying before the reset only fails again
        limit = find_limit(said, ctx.clock)
        if limit is not None:
            break
        _wait_to_retry(ctx, knobs, attempt, run_id)
    _settle(ctx, knobs, runner, result, total, run_id)
    return result, total, limit


def _retry_pattern(ctx: Ctx) -> re.Pattern[str] | None:
    """The provider error worth a retry (LOOOP_RUNNER_RETRY_MATCH), None when unset or bad."""
    match = ctx.env.get("LOOOP_RUNNER_RETRY_MATCH", "").strip()
    try:
        return re.compile(match, re.IGNORECASE) if match else None
    except re.error:
        ctx.warn_once(f"ignoring LOOOP_RUNNER_RETRY_MATCH={match!r}: not a valid regex")
        return None


def _wait_to_retry(ctx: Ctx, knobs: Knobs, attempt: int, run_id: str) -> None:
    wait = knobs.num("runner_retry_sleep") * attempt
    ctx.events.emit(
        "warn",
        "tick.retry",
        f"runner hit a matched provider error (attempt {attempt}); retrying in {wait}s",
        attempt=attempt,
        run_id=run_id,
    )
    ctx.events.record("runner_retry", run_id=run_id, attempt=attempt)
    time.sleep(wait)


def _sandbox_policy(runner: Runner, cfg: Config) -> SandboxPolicy | None:
    if runner.sandbox is None and cfg.sandbox is None:
        return None
    return resolve(None, runner.sandbox, cfg.sandbox)  # as for its workers


def decision_file(ctx: Ctx, runner: Runner, cfg: Config) -> Path:
    """Where this runner's decide call writes its decision (Paths.decision_file): in its room
    when it runs sandboxed, as run_runner tells it."""
    policy = _sandbox_policy(runner, cfg)
    return ctx.paths.decision_file(policy is not None and policy.on)


def _settle(
    ctx: Ctx, knobs: Knobs, runner: Runner, result: RunResult, total: float | None, run_id: str
) -> None:
    """The beat's cost as one ledger row; a budgeted runner that reports none counts toward
    the unmetered breaker."""
    paths = ctx.paths
    if total is not None and total > 0:
        append_cost(paths.cost_ledger, ctx.clock.now(), "tick", run_id, runner.name, total)
    note_decide(os.fspath(paths.data), ctx.clock, total)  # prices the skips to come
    if not result.ok or not unmetered_armed(knobs, reports_cost(runner)):
        return
    if total is not None:
        clear_unmetered(os.fspath(paths.data))
        return
    n = record_unmetered(os.fspath(paths.data), runner_signature(runner))
    lim = UNMETERED_LIMIT
    tail = "breaker now open" if n >= lim else f"{n}/{lim} before the breaker opens"
    ctx.events.emit(
        "warn",
        "tick.unmetered",
        f"runner '{runner.name}' reported no cost ({tail}) — declare "
        f"runners.{runner.name}.cost in the config",
        runner=runner.name,
        count=n,
    )
