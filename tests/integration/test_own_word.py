"""A worker's own word moves only itself (issue 64 item 3): its spend report pauses only itself
and reaches the fleet's day bounded, and its asks are capped and leave the needs-you queue when
it is killed."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.contract.answering import Request, answer_here
from looop.core.context import Ctx
from looop.human.mailbox import new_ask
from looop.loop.tick import tick
from looop.remote.fleet import fleet_rows
from looop.sessions.state import get_session
from looop.views.needs import needs_at
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import stop_sessions, wait_until, wire
from tests.integration.test_decided_budget import _looop, _ls, stopped

pytestmark = pytest.mark.timeout(120)
SLEEPER = "sleep 600 # {{prompt_file}}"


@pytest.fixture
def real(ctx: Ctx) -> Ctx:
    """The beat's clock at the time `looop` (a subprocess) stamps its rows and starts with."""
    return replace(ctx, clock=FixedClock(t=time.time()))


def _asks_of(ctx: Ctx) -> dict[str, int]:
    got: dict[str, int] = {}
    for n in needs_at(os.fspath(ctx.paths.data), fleet_rows(ctx, False)):
        if n.kind == "ask":
            got[n.worker] = got.get(n.worker, 0) + 1
    return got


def test_a_killed_workers_asks_leave_the_needs_queue(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    p = ctx.paths
    try:
        for wid in ("loud", "calm"):
            start_worker(ctx, ctx.knobs(), StartRequest(wid, "x", command=SLEEPER))
        for i in range(3):
            new_ask(p.asks, p.answers, "loud", f"q{i}?", None, [], ctx.clock.now())
        new_ask(p.asks, p.answers, "calm", "ship?", None, [], ctx.clock.now())
        assert _asks_of(ctx) == {"loud": 3, "calm": 1}
        kill = decision_from_obj({"action": "kill_worker", "id": "loud"})
        done = execute(ctx, ctx.knobs(), kill, actor="cli")
        assert "its 3 pending asks archived" in done.summary
        assert _asks_of(ctx) == {"calm": 1}  # the other worker's ask still waits
    finally:
        stop_sessions(p.data)


def test_a_workers_own_report_of_50_pauses_only_itself_and_counts_bounded(real: Ctx) -> None:
    """One worker's `cost report` of $50, made through the door as itself, froze every other
    worker and refused every start until midnight under the default $10 budget while status
    said "(no budget)": now it pauses only that worker (its --budget counts it whole), the
    fleet's day counts $1 of it (a report's bound), and status says it is self-reported."""
    ctx = real
    wire(ctx, [{"decision": {"action": "noop"}}] * 4, worker=SLEEPER)
    cfg = json.loads(ctx.paths.config.read_text())
    del cfg["max_daily_usd"]  # the default budget, as a user's config leaves it
    ctx.paths.config.write_text(json.dumps(cfg))
    data = os.fspath(ctx.paths.data)
    try:
        _looop(ctx, "worker", "start", "liar", "x", "--command", SLEEPER, "--budget", "20")
        _looop(ctx, "worker", "start", "calm", "x", "--command", SLEEPER)
        pids = {w: get_session(ctx.paths.data, w).child_pid for w in ("liar", "calm")}
        report = ("cost", "report", "worker", "liar", "custom", "50")
        req = Request("liar", "said-fifty-1", report, None)
        said = answer_here(req, data, ctx.env, time.time())
        assert isinstance(said, dict) and said["code"] == 0, said
        tick(ctx)
        liar, calm = pids["liar"], pids["calm"]
        assert liar is not None and calm is not None
        wait_until(lambda: stopped(liar), 10, "the reporting worker to pause at its budget")
        assert not stopped(calm)  # the other worker goes on
        started = _looop(ctx, "worker", "start", "next", "x", "--command", SLEEPER)
        assert "next" in started  # a start is not refused
        st = json.loads(_looop(ctx, "status", "--json"))["spend"]
        assert (st["spent_today_usd"], st["said_today_usd"], st["max_daily_usd"]) == (1, 1, 10)
        text = _looop(ctx, "status")
        assert "of $10.00 budget — $1.0000 of it self-reported by workers" in text
        assert _ls(ctx)["liar"]["health"] == "over budget"
        assert _ls(ctx)["calm"]["health"] != "over budget"
    finally:
        stop_sessions(ctx.paths.data)
