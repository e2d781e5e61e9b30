"""A decider's start_worker with budget_usd holds the worker to it as `worker start --budget`
does: real `sleep` workers, whose spend is written where the meter reads a claude worker's
(its resume record names a claude conversation, and that conversation's session file holds
priced usage), so the beat's own meter counts it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sessions.client import kill
from looop.sessions.state import get_session
from looop.spend.spent import budgets, set_budget
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import held, kill_sessions, outside_env, wait_until, wire

pytestmark = pytest.mark.timeout(120)

SLEEPER = "sleep 600; : {{prompt_file}}"
SONNET = "claude-sonnet-4-5-20250929"  # $15 per million output tokens (prices.py)


def spend(ctx: Ctx, wid: str, usd: float) -> None:
    """Make worker `wid` look like a claude worker that has spent `usd` (output tokens)."""
    conv = f"0b7e6a1c-1111-4222-8333-{abs(hash(wid)) % 10**12:012d}"
    rec_path = ctx.paths.data / "resume" / f"{wid}.json"
    rec = json.loads(rec_path.read_text())
    rec.update(resume="claude --resume {{session_id}}", conversation=conv, cli="claude")
    rec_path.write_text(json.dumps(rec))
    proj = Path(ctx.env["HOME"]) / ".claude" / "projects" / "-tmp-w"
    proj.mkdir(parents=True, exist_ok=True)
    usage = {"input_tokens": 0, "output_tokens": round(usd / 15 * 1_000_000)}
    f = proj / f"{conv}.jsonl"
    n = len(f.read_text().splitlines()) if f.exists() else 0  # a new message id each time
    msg = {"id": f"m-{wid}-{n}", "model": SONNET, "role": "assistant", "usage": usage}
    with open(f, "a") as fh:
        fh.write(json.dumps({"type": "assistant", "message": msg}) + "\n")


def stopped(pid: int) -> bool:
    return held(pid)  # all it runs: its cgroup frozen (or every process stopped)


def _ls(ctx: Ctx) -> dict[str, dict[str, object]]:
    import subprocess

    env = outside_env()
    env["LOOOP_DATA_DIR"] = str(ctx.paths.data)
    r = subprocess.run(
        [sys.executable, "-m", "looop", "ls", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return {row["id"]: row for row in json.loads(r.stdout)}


def test_a_decided_budget_pauses_the_worker_when_its_spend_reaches_it(ctx: Ctx) -> None:
    move = {"action": "start_worker", "id": "w1", "prompt": "work", "budget_usd": 0.5}
    wire(ctx, [{"decision": move}, {"decision": {"action": "noop"}}], worker=SLEEPER)
    try:
        tick(ctx)
        assert budgets(str(ctx.paths.data)) == {"w1": (0.5, "pause")}
        pid = get_session(ctx.paths.data, "w1").child_pid
        assert pid is not None
        spend(ctx, "w1", 0.2)
        tick(ctx)
        assert not stopped(pid)  # under its budget: it goes on
        spend(ctx, "w1", 0.4)
        tick(ctx)
        wait_until(lambda: stopped(pid), 10, "the worker over its budget to be stopped")
        row = _ls(ctx)["w1"]
        assert row["health"] == "over budget"
        assert abs(float(str(row["spend_usd"])) - 0.6) < 1e-6
    finally:
        kill_sessions(ctx.paths.data)


def test_a_decided_stop_policy_kills_the_worker_and_a_refused_start_keeps_its_budget(
    ctx: Ctx,
) -> None:
    first = {"action": "start_worker", "id": "w2", "prompt": "go", "budget_usd": 1}
    move = {**first, "on_budget": "stop"}
    again = {**first, "budget_usd": 9}  # a live duplicate: refused
    wire(
        ctx,
        [{"decision": move}, {"decision": again}, {"decision": {"action": "noop"}}],
        worker=SLEEPER,
    )
    try:
        tick(ctx)
        assert budgets(str(ctx.paths.data)) == {"w2": (1.0, "stop")}
        tick(ctx, force=True)  # the second start is refused: the live worker's budget stands
        assert budgets(str(ctx.paths.data)) == {"w2": (1.0, "stop")}
        spend(ctx, "w2", 1.5)
        tick(ctx)
        wait_until(lambda: not get_session(ctx.paths.data, "w2").alive, 10, "w2 to be stopped")
        tick(ctx)  # a beat after it ended records how: stopped at its budget, not killed
        rows = json.loads(_looop(ctx, "ls", "-a", "--json"))
        assert {r["id"]: r["outcome"] for r in rows}["w2"] == "over_budget"
    finally:
        if get_session(ctx.paths.data, "w2").alive:
            kill(ctx.paths.data, "w2")
        kill_sessions(ctx.paths.data)


def _looop(ctx: Ctx, *args: str) -> str:
    import subprocess

    env = outside_env()
    env["LOOOP_DATA_DIR"] = str(ctx.paths.data)
    r = subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _said(ctx: Ctx, name: str) -> int:
    return ctx.paths.events.read_text().count(f'"{name}"')


def test_the_daily_budget_holds_running_workers_until_the_next_local_day(
    ctx: Ctx, clock: FixedClock
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}] * 20, worker=SLEEPER, max_daily_usd=1)
    data = str(ctx.paths.data)
    try:
        for wid in ("w1", "w2", "w3"):
            start_worker(ctx, ctx.knobs(), StartRequest(wid, "work"))
        set_budget(data, "w2", 100, "stop")  # its own policy: stopped, not paused
        pids = {w: get_session(ctx.paths.data, w).child_pid for w in ("w1", "w3")}
        spend(ctx, "w1", 0.7)
        tick(ctx)
        assert not any(stopped(p) for p in pids.values() if p)  # under the daily budget
        spend(ctx, "w3", 0.5)  # the fleet's day: $1.20 of $1.00
        tick(ctx)
        for wid, pid in pids.items():
            assert pid is not None
            wait_until(lambda p=pid: stopped(p), 10, f"{wid} to be paused")
        wait_until(lambda: not get_session(ctx.paths.data, "w2").alive, 10, "w2 to be stopped")
        assert _ls(ctx)["w1"]["health"] == "over budget"
        tick(ctx)
        assert _said(ctx, "fleet_over_budget") == 1  # said once, not each beat
        # a human lets w3 go on: it is not held again today
        _looop(ctx, "worker", "continue", "w3")
        tick(ctx)
        assert not stopped(pids["w3"] or 0) and stopped(pids["w1"] or 0)
        # the next local day: w1 goes on by itself
        clock.t += 86_400
        tick(ctx)
        assert not stopped(pids["w1"] or 0)
        assert _ls(ctx)["w1"]["health"] != "over budget"
        assert _said(ctx, "worker_goes_on") == 1
    finally:
        kill_sessions(ctx.paths.data)
