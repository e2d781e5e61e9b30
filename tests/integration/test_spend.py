"""Spend control through whole beats: metering, ledger, budget, unmetered breaker, cap, retry."""

from __future__ import annotations

import json

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.spend.statusspend import spend_status
from tests.clocks import FixedClock
from tests.helpers import Cli, events, runner_calls, wire, with_env

pytestmark = pytest.mark.timeout(90)


def _run_cost(ctx: Ctx, run_id: str) -> float:
    """The USD the ledger holds for one run (every attempt's row)."""
    rows = [json.loads(line) for line in ctx.paths.cost_ledger.read_text().splitlines()]
    return sum(r["cost_usd"] for r in rows if r["id"] == run_id)


def _claude_cost(usd: float) -> str:
    return json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "total_cost_usd": usd,
            "num_turns": 1,
            "duration_ms": 900,
        }
    )


def _step(usd: float | None, goal: str) -> dict[str, object]:
    step: dict[str, object] = {
        "decision": {"action": "write_goal", "id": goal, "body": f"goal: {goal}"}
    }
    if usd is not None:
        step["stream"] = [_claude_cost(usd)]
    return step


def test_metered_beat_lands_in_the_ledger(ctx: Ctx) -> None:
    wire(ctx, [_step(0.25, "a")], max_daily_usd=5)
    out = tick(ctx)
    assert out.status == "decided" and out.run_id
    assert _run_cost(ctx, out.run_id) == pytest.approx(0.25)
    decided = next(f for n, f in ctx.events.seen if n == "tick.decided")
    assert decided["cost_usd"] == pytest.approx(0.25) and decided["msg"].endswith("· $0.25")
    rows = [json.loads(line) for line in ctx.paths.cost_ledger.read_text().splitlines()]
    assert rows[0]["kind"] == "tick" and rows[0]["runner"] == "scripted"


def test_budget_stops_the_ai_until_local_midnight(ctx: Ctx, clock: FixedClock) -> None:
    script = wire(ctx, [_step(0.25, "a"), _step(0.25, "b"), _step(0.25, "c")], max_daily_usd=0.4)
    assert tick(ctx).status == "decided"
    assert tick(ctx).status == "decided"  # spent 0.25 < 0.4 before this one
    out = tick(ctx)  # the new goal changed the world, but 0.50 >= 0.40
    assert out.status == "budget" and runner_calls(script) == 2
    assert "tick.budget" in events(ctx)
    st = spend_status(str(ctx.paths.data), clock, ctx.knobs(), ctx.config().runner())
    assert st["budget"]["open"] and "midnight" in st["budget"]["lift"]
    clock.advance(86400)  # a new local day
    assert tick(ctx).status == "decided" and runner_calls(script) == 3


def test_unmetered_runner_fails_closed_then_heals(ctx: Ctx) -> None:
    script = wire(ctx, [_step(None, f"g{i}") for i in range(6)], max_daily_usd=10)
    for _ in range(3):
        assert tick(ctx).status == "decided"
    assert events(ctx).count("tick.unmetered") == 3
    out = tick(ctx)
    assert out.status == "budget" and runner_calls(script) == 3
    assert "tick.budget_unmetered" in events(ctx)
    cfg = json.loads(ctx.paths.config.read_text())  # declaring a cost spec changes the signature
    cfg["runners"]["scripted"]["cost"] = {"type": "result", "pointer": "/total_cost_usd"}
    ctx.paths.config.write_text(json.dumps(cfg))
    assert tick(ctx).status == "decided" and runner_calls(script) == 4


def test_the_default_budget_never_stops_a_custom_runner_that_reports_no_cost(ctx: Ctx) -> None:
    script = wire(ctx, [_step(None, f"g{i}") for i in range(5)])
    cfg = json.loads(ctx.paths.config.read_text())
    del cfg["max_daily_usd"]  # the default budget, as a user's config leaves it
    ctx.paths.config.write_text(json.dumps(cfg))
    for _ in range(5):
        assert tick(ctx).status == "decided"
    assert runner_calls(script) == 5 and "tick.unmetered" not in events(ctx)


def test_hourly_decide_cap(ctx: Ctx, clock: FixedClock) -> None:
    c = with_env(ctx, LOOOP_MAX_DECIDES_PER_HOUR="2")
    script = wire(c, [{"decision": {"action": "noop"}}] * 4)
    assert tick(c, force=True).status == "decided"
    assert tick(c, force=True).status == "decided"
    out = tick(c, force=True)
    assert out.status == "capped" and runner_calls(script) == 2 and "tick.capped" in events(c)
    clock.advance(3601)
    assert tick(c, force=True).status == "decided"


def test_failed_attempts_count_against_the_cap(ctx: Ctx) -> None:
    c = with_env(ctx, LOOOP_MAX_DECIDES_PER_HOUR="1")
    wire(c, [{"exit": 2}, {"decision": {"action": "noop"}}])
    assert tick(c).status == "failed"
    c.paths.playbook.write_text("edit: cut the backoff\n")
    assert tick(c).status == "capped"


def test_runner_retry_on_matched_provider_error(ctx: Ctx) -> None:
    c = with_env(
        ctx,
        LOOOP_RUNNER_RETRIES="2",
        LOOOP_RUNNER_RETRY_MATCH="overloaded",
        LOOOP_RUNNER_RETRY_SLEEP="0",
    )
    script = wire(
        c,
        [
            {"stream": [_claude_cost(0.1)], "garbage": "API Error: Overloaded"},
            _step(0.2, "after-retry"),
        ],
        max_daily_usd=5,
    )
    out = tick(c)
    assert out.status == "decided" and runner_calls(script) == 2
    assert "tick.retry" in events(c)
    assert _run_cost(c, out.run_id or "") == pytest.approx(0.3)  # both attempts


def test_no_retry_without_a_match(ctx: Ctx) -> None:
    c = with_env(
        ctx,
        LOOOP_RUNNER_RETRIES="2",
        LOOOP_RUNNER_RETRY_MATCH="overloaded",
        LOOOP_RUNNER_RETRY_SLEEP="0",
    )
    script = wire(c, [{"garbage": "I have thoughts"}, _step(None, "x")])
    assert tick(c).status == "failed" and runner_calls(script) == 1


def test_cost_verb_records_and_renders_what_the_room_reports(cli: Cli) -> None:
    from looop.spend.report import render_report

    assert cli("cost")[1].startswith("looop cost — no cost recorded yet")
    code, out, err = cli("cost", "report", "session", "fix-ci", "claude", "$0.42")
    assert (code, out.strip()) == (0, "recorded $0.42 for session fix-ci (claude)"), err
    assert cli("_", "cost", "tick", "tick-1", "pi", "1.5")[0] == 0  # the seed's form
    for by in ("kind", "runner", "worker", "day"):
        code, raw, err = cli("cost", "--by", by, "--json")
        assert code == 0, err
        rep = json.loads(raw)
        assert (rep["total"], rep["calls"], rep["by"]) == (1.92, 2, by)
        assert cli("cost", "--by", by)[1] == render_report(rep, 0, rep["savings"]) + "\n"
    text = cli("cost", "all", "--by", "runner")[1]
    assert "total: $1.92  (2 calls)" in text and "claude" in text and "$1.5" in text
    bad = [
        ("cost", "month"),
        ("cost", "--by", "planet"),
        ("cost", "report", "session", "w1"),
        ("cost", "report", "session", "w1", "claude", "lots"),
        ("cost", "report", "session", "w1", "claude", "nan"),
        ("cost", "report", "session", "w1", "claude", "0"),
        ("cost", "report", "session", "w1", "claude", "-1"),
    ]
    for args in bad:
        code, out, err = cli(*args)
        assert code != 0 and len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err
    assert json.loads(cli("cost", "all", "--json")[1])["calls"] == 2  # nothing added
