"""A custom-command worker's budget is enforced on what it reports (issue 54 item 3): no CLI
record meters it, so its own `looop cost report` rows count; past its budget it is paused
whole by the real supervisor and `ls` says over budget."""

from __future__ import annotations

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sessions.state import get_session
from looop.spend.spent import budgets
from tests.helpers import kill_sessions, wait_until, wire
from tests.integration.test_decided_budget import _looop, _ls, stopped

pytestmark = pytest.mark.timeout(120)

CUSTOM = "sleep 600; : {{prompt_file}}"


def test_a_custom_worker_reporting_past_its_budget_is_paused_whole(ctx: Ctx) -> None:
    move = {
        "action": "start_worker",
        "id": "cw",
        "prompt": "work",
        "command": CUSTOM,
        "budget_usd": 0.01,
    }
    wire(ctx, [{"decision": move}, {"decision": {"action": "noop"}}], worker=CUSTOM)
    try:
        tick(ctx)
        assert budgets(str(ctx.paths.data)) == {"cw": (0.01, "pause")}
        pid = get_session(ctx.paths.data, "cw").child_pid
        assert pid is not None
        said = _looop(ctx, "cost", "report", "worker", "cw", "custom", "0.004")
        assert "recorded $0.004" in said  # no CLI record meters it: its report counts
        tick(ctx)
        assert not stopped(pid)  # under its budget: it goes on
        _looop(ctx, "cost", "report", "worker", "cw", "custom", "0.05")
        tick(ctx)
        wait_until(lambda: stopped(pid), 10, "the worker over its reported budget to pause")
        row = _ls(ctx)["cw"]
        assert row["health"] == "over budget"
        assert abs(float(str(row["spend_usd"])) - 0.054) < 1e-6
    finally:
        kill_sessions(ctx.paths.data)


def test_a_custom_worker_started_with_a_budget_is_told_it_counts_only_what_it_reports(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}], worker=CUSTOM)
    try:
        said = _looop(ctx, "worker", "start", "cw2", "x", "--command", CUSTOM, "--budget", "1")
        line = "budget: counts only what cw2 reports (`looop cost report worker cw2 RUNNER USD`)"
        assert line in said, said
        plain = _looop(ctx, "worker", "start", "cw3", "x", "--command", CUSTOM)
        assert "budget:" not in plain, plain  # no budget: nothing to say
    finally:
        kill_sessions(ctx.paths.data)
