"""decide/spend on its own: which breaker is open comes back as data, in the guard order."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.decide import spend
from looop.home.config import Knobs, Runner, parse_config, resolve_knobs
from looop.spend.record import append_cost
from looop.spend.statusspend import UNMETERED_LIMIT, note_decide, record_unmetered, runner_signature
from tests.clocks import FixedClock

RUNNER = Runner("scripted", "true", "cat {{prompt_file}}")


def _knobs(env: dict[str, str] | None = None, **raw: Any) -> Knobs:
    return resolve_knobs(parse_config(raw, "<test>"), env or {})


def test_no_breaker_when_nothing_is_spent(ctx: Ctx) -> None:
    assert spend.open_breaker(ctx, _knobs(max_daily_usd=5), RUNNER) is None
    assert spend.open_breaker(ctx, _knobs(max_daily_usd=0), RUNNER) is None


def test_a_spent_budget_opens_the_budget_breaker_and_says_how_much(
    ctx: Ctx, clock: FixedClock
) -> None:
    append_cost(ctx.paths.cost_ledger, clock.now(), "tick", "tick-1", "scripted", 2.5)
    assert spend.open_breaker(ctx, _knobs(max_daily_usd=3), RUNNER) is None
    append_cost(ctx.paths.cost_ledger, clock.now(), "tick", "tick-2", "scripted", 1.0)
    hit = spend.open_breaker(ctx, _knobs(max_daily_usd=3), RUNNER)
    assert hit is not None
    assert (hit.status, hit.event, hit.record, hit.alert_key) == (
        "budget",
        "tick.budget",
        "budget_exceeded",
        "budget",
    )
    assert hit.fields["spent_usd"] >= 3 and hit.fields["max_daily_usd"] == 3
    assert "max_daily_usd" in hit.message and "midnight" in hit.alert
    # no budget, no budget breaker: the same ledger is not a reason to stop
    assert spend.open_breaker(ctx, _knobs(max_daily_usd=0), RUNNER) is None


def test_an_unmetered_runner_is_stopped_only_while_a_budget_is_set(ctx: Ctx) -> None:
    sig = runner_signature(RUNNER)
    for _ in range(UNMETERED_LIMIT):
        record_unmetered(str(ctx.paths.data), sig)
    hit = spend.open_breaker(ctx, _knobs(max_daily_usd=5), RUNNER)
    assert hit is not None and hit.event == "tick.budget_unmetered"
    assert hit.fields == {"runner": "scripted"} and "runners.scripted.cost" in hit.message
    assert spend.open_breaker(ctx, _knobs(max_daily_usd=0), RUNNER) is None


def test_the_hourly_cap_counts_decides(ctx: Ctx, clock: FixedClock) -> None:
    knobs = _knobs({"LOOOP_MAX_DECIDES_PER_HOUR": "2"}, max_daily_usd=0)
    note_decide(str(ctx.paths.data), clock.now())
    assert spend.open_breaker(ctx, knobs, RUNNER) is None
    note_decide(str(ctx.paths.data), clock.now())
    hit = spend.open_breaker(ctx, knobs, RUNNER)
    assert hit is not None and (hit.status, hit.event) == ("capped", "tick.capped")
    assert hit.fields == {"decides": 2, "cap": 2}
    clock.advance(3601)  # the hour rolls
    assert spend.open_breaker(ctx, knobs, RUNNER) is None
