"""The dashboard's spend chart: /api/v1/cost gives each day's decides (ticks) and workers
(metered from their CLIs or reported) apart, and the chart stacks those two fields."""

from __future__ import annotations

from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.spend.record import append_cost, append_costs


def test_each_day_splits_decides_from_workers(authed: TestClient, ctx: Ctx) -> None:
    now, ledger = ctx.clock.now(), ctx.paths.cost_ledger
    append_cost(ledger, now, "tick", "tick-1", "claude", 0.25)
    append_costs(ledger, now, "worker", [("w1", "claude", 1.0, "claude-sonnet-4-5")])
    append_cost(ledger, now, "session", "w2", "custom", 0.5)  # a worker's own report
    append_cost(ledger, now - 3 * 86400, "tick", "tick-0", "codex", 0.4)
    daily = authed.get("/api/v1/cost?days=14").json()["daily"]
    assert len(daily) == 14
    assert (daily[-1]["decides"], daily[-1]["workers"], daily[-1]["usd"]) == (0.25, 1.5, 1.75)
    assert (daily[-4]["decides"], daily[-4]["workers"]) == (0.4, 0.0)
    assert all(d["decides"] + d["workers"] == d["usd"] for d in daily)


def test_the_chart_stacks_the_two_fields(authed: TestClient) -> None:
    js = authed.get("/static/app.js").text
    chart = js[js.index("function renderChart") :]
    chart = chart[: chart.index("\n}\n")]
    assert "d.decides" in chart and "d.workers" in chart
