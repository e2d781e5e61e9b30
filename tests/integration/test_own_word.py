"""A worker's own word moves only itself (issue 64 item 3): its asks are capped and leave the
needs-you queue when it is killed."""

from __future__ import annotations

import os

import pytest

from looop.act.actions import decision_from_obj
from looop.act.executor import execute
from looop.core.context import Ctx
from looop.home.needs import needs_at
from looop.human.mailbox import new_ask
from looop.remote.fleet import fleet_rows
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import stop_sessions, wire

pytestmark = pytest.mark.timeout(120)
SLEEPER = "sleep 600 # {{prompt_file}}"


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
