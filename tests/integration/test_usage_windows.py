"""Usage windows for the whole fleet (issue 54 item 5): a worker on a custom runner stops on its
provider's usage-limit message; the beat marks that account limited until the reset; new
starts on it (the decider's and a human's) are held as `scheduled`, not failed, and shown in
`ls` and `status`; at the reset (a stepped clock) the stopped worker is continued on its
recorded conversation and the held starts are made."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sessions.state import SessionError, get_session
from looop.workers.resume import read_record
from tests.clocks import FixedClock
from tests.helpers import clean_env, kill_sessions, run_cli, wait_until, wire

pytestmark = pytest.mark.timeout(120)

RESET_IN = 3600

# the worker: a fresh start says the limit while limit.on holds a reset; a resume says which
# conversation it was given
WORKER = """\
here={here}
if [ "$1" = --resume ]; then echo "continued $LOOOP_SESSION_ID $2" >> "$here/continued"; exit 0; fi
echo "started $LOOOP_SESSION_ID $1" >> "$here/started"
if [ -s "$here/limit.on" ]; then
  echo "Claude AI usage limit reached|$(cat "$here/limit.on")"
  exit 1
fi
echo working
"""


def _start(wid: str) -> dict[str, object]:
    move = {"action": "start_worker", "id": wid, "prompt": f"work as {wid}", "runner": "lim"}
    return {"decision": move}


def _home(ctx: Ctx, clock: FixedClock) -> Path:
    here = ctx.paths.data.parent / "lim"
    here.mkdir()
    script = here / "worker.sh"
    script.write_text(WORKER.format(here=shlex.quote(str(here))))
    (here / "limit.on").write_text(str(int(clock.now()) + RESET_IN))
    noop = {"decision": {"action": "noop", "reason": "seen"}}
    wire(ctx, [_start("w1"), _start("w2"), *([noop] * 8)])
    cfg = json.loads(ctx.paths.config.read_text())
    line = f"bash {shlex.quote(str(script))}"
    cfg["runners"]["lim"] = {
        "tick": line + " {{prompt_file}}",
        "worker": line + " {{session_id}} {{prompt_file}}",
        "resume": line + " --resume {{session_id}} {{prompt_file}}",
    }
    ctx.paths.config.write_text(json.dumps(cfg))
    return here


def _ended(ctx: Ctx, wid: str) -> bool:
    try:
        return not get_session(ctx.paths.data, wid).alive
    except SessionError:
        return False


def _ls(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], clock: FixedClock
) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "ls", "--json", env=env, clock=clock)
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


def test_a_limit_a_worker_sees_holds_new_starts_and_the_reset_goes_on(
    ctx: Ctx, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    here = _home(ctx, clock)
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, TZ="UTC")
    try:
        assert tick(ctx).status == "decided"  # the decider starts w1, which hits the limit
        wait_until(lambda: _ended(ctx, "w1"), 20, "w1 to stop on its limit")
        # the next beat reads w1's screen: one worker's word (it could print the line itself)
        # holds only w1, so the decider's start of w2 on the same account goes ahead
        out = tick(ctx, force=True)
        assert out.status == "decided", out.error
        wait_until(lambda: _ended(ctx, "w2"), 20, "w2 (started, not held) to stop on it too")
        assert tick(ctx, force=True).status == "decided"  # w2's screen confirms the window
        # the beat that saw w1's limit recorded how it ended: limited, not a plain exit
        code, out_text, err = run_cli(capsys, "ls", "-a", "--json", env=env, clock=clock)
        assert {r["id"]: r["outcome"] for r in json.loads(out_text)}["w1"] == "limited", err
        # a human's start on that account is held too, and says so
        code, said, err = run_cli(
            capsys, "worker", "start", "w3", "more work", "--runner", "lim", env=env, clock=clock
        )
        assert code == 0, err
        assert "held as scheduled until" in said and "usage limit" in said
        rows = _ls(capsys, env, clock)
        assert rows["w3"]["state"] == "scheduled" and "usage limit" in rows["w3"]["note"]
        code, status, _ = run_cli(capsys, "status", env=env, clock=clock)
        line = next(ln for ln in status.splitlines() if ln.startswith("window:"))
        assert "lim" in line and "held: w3" in line and "to continue: w1, w2" in line
        assert not (here / "continued").exists()
        # the reset: w1 goes on by its recorded conversation, w2 and w3 start
        (here / "limit.on").write_text("")
        clock.advance(RESET_IN + 61)
        tick(ctx)
        rec = read_record(ctx, "w1")
        assert rec is not None and rec.conversation
        cont = here / "continued"
        wait_until(lambda: cont.exists() and cont.read_text().count("\n") == 2, 20, "w1, w2 on")
        assert ["continued", "w1", rec.conversation] in [ln.split() for ln in cont.open()]
        wait_until(lambda: _ended(ctx, "w3"), 20, "the held start")
        started = (here / "started").read_text().split("\n")
        assert [ln.split()[1] for ln in started if ln] == ["w1", "w2", "w3"]
        rows = _ls(capsys, env, clock)
        assert all(r["state"] != "scheduled" for r in rows.values())
        code, status, _ = run_cli(capsys, "status", env=env, clock=clock)
        assert not [ln for ln in status.splitlines() if ln.startswith("window:")]
    finally:
        kill_sessions(ctx.paths.data)


def test_a_limit_the_decide_sees_holds_starts_on_its_account_until_the_reset(
    ctx: Ctx, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    noop = {"decision": {"action": "noop", "reason": "seen"}}
    said = f"Claude AI usage limit reached|{int(clock.now()) + RESET_IN}"
    # the decider's runner and its workers run the same program: one account
    worker = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)' {{{{prompt_file}}}}"
    wire(ctx, [noop, {"exit": 1, "stderr": said}, noop, noop], worker=worker)
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, TZ="UTC")
    try:
        assert tick(ctx).status == "decided"
        ctx.paths.goals.mkdir(parents=True, exist_ok=True)
        (ctx.paths.goals / "a.md").write_text("goal: a\n")
        assert tick(ctx).status == "limited"
        code, out, err = run_cli(capsys, "worker", "start", "w5", "x", env=env, clock=clock)
        assert code == 0 and "held as scheduled until" in out, err
        with pytest.raises(SessionError):
            get_session(ctx.paths.data, "w5")
        assert _ls(capsys, env, clock)["w5"]["state"] == "scheduled"
        clock.advance(RESET_IN + 61)
        out_tick = tick(ctx)
        assert out_tick.status == "decided", out_tick.error  # the decide resumes
        assert get_session(ctx.paths.data, "w5").alive  # the held start was made
        assert _ls(capsys, env, clock)["w5"]["state"] != "scheduled"
    finally:
        kill_sessions(ctx.paths.data)
