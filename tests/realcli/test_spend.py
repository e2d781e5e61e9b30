"""Metered workers with the real CLIs: a worker does turns against the scripted model,
and one beat later (`looop tick`) its spend is on the cost ledger as a `worker` row — read
from the CLI's own record of the conversation, equal to the server's reported usage priced
with the price table (opencode and pi price it themselves: with the config's rates, and with
rates our table holds for the same model)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from looop.sessions.client import expect, kill
from looop.sessions.hold import go_on
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import held
from tests.realcli.harness import Rig, answer_first_run_prompts
from tests.realcli.meter import Meter, evidence, expected, worker_rows
from tests.realcli.test_resume import _await, _reboot, _screen
from tests.realcli.test_resume_named import _kill_left_behind

RigFor = Callable[[str], Rig]


@pytest.mark.timeout(300)
def test_a_worker_at_its_budget_is_paused_until_a_human_lets_it_go_on(rig_for: RigFor) -> None:
    rig = rig_for("claude")
    answer_first_run_prompts(rig)
    root, sid = rig.ctx.paths.data, "m-budget"
    done = rig.looop("worker", "start", sid, "--budget", "0.001", "Greet. ECHO:brief42")
    assert done.returncode == 0, done.stderr
    try:
        code, _, _ = expect(
            root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=rig.ctx.clock
        )
        assert code == 0, _screen(root, sid)
        pid = get_session(root, sid).child_pid
        assert pid is not None

        def paused() -> bool:
            assert rig.looop("tick").returncode == 0
            return held(pid)

        try:
            _await(paused, 60, "the worker over its budget to be paused")
        except AssertionError as e:  # what the beat metered, and what the CLI wrote
            row = json.loads(rig.looop("ls", "--json").stdout)
            raise AssertionError(f"{e}; ls {row}; {evidence(rig)}") from None
        rows = json.loads(rig.looop("ls", "--json").stdout)
        row = next(r for r in rows if r["id"] == sid)
        assert row["health"] == "over budget" and row["spend_usd"] >= 0.001
        # a further beat does not say it twice
        assert rig.looop("tick").returncode == 0
        said = rig.ctx.paths.events.read_text().count('"worker_over_budget"')
        assert said == 1
        done = rig.looop("worker", "continue", sid, "--budget", "100")
        assert done.returncode == 0, done.stderr
        assert not held(pid)
        rows = json.loads(rig.looop("ls", "--json").stdout)
        assert next(r for r in rows if r["id"] == sid)["health"] != "over budget"
    finally:
        if get_session(root, sid).alive:
            kill(root, sid)


@pytest.mark.timeout(300)
# opencode: test_resume_named walks the same reboot and resume, and meters it (a start of its
# TUI costs ten seconds of CPU)
@pytest.mark.parametrize("cli", ["claude", "codex", "pi"])
def test_a_resumed_worker_is_metered_for_both_runs_once(rig_for: RigFor, cli: str) -> None:
    """A worker spends, its machine "reboots" (supervisor and agent SIGKILLed), `looop
    restart` resumes it on the same conversation and it spends again, two turns: the metered
    spend is what the server reported for every turn, priced — a later turn of the same run
    adds only itself, and the resumed CLI's record (the same file appended, or its totals
    counted again from zero) adds only the second run. (One worker walks all of it: a start
    of a real TUI costs seconds of CPU.)"""
    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"mr-{cli}"
    start_worker(ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42", resume=True))
    meter = Meter(rig, sid)
    try:
        code, _, _ = expect(root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        first = meter.settles(0, f"{cli}'s first run metered")
        assert first > 0
        rows = worker_rows(rig, sid)
        assert rows and all(r["runner"] == rig.ctx.config().default for r in rows)
        n1 = meter.turns()
        _reboot(root, sid)
        _kill_left_behind(rig.home)  # a reboot ends the CLI's daemons too (codex's)
        done = rig.looop("restart", sid)
        assert done.returncode == 0, done.stderr
        assert f"resumed {sid}" in done.stdout, done.stdout
        # the resumed run's first turn (the note) metered: it is over, the TUI waits again
        mid = meter.settles(n1, f"the resumed {cli}'s first turn metered")
        assert mid > first
        both = meter.another_turn(mid)
        # `looop cost --by worker` shows it; a worker's own report is not counted again
        done = rig.looop("cost", "report", "session", sid, str(rig.ctx.config().default), "9.99")
        assert done.returncode == 0, done.stderr
        assert "not counted again" in done.stdout
        rep = json.loads(rig.looop("cost", "--by", "worker", "--json").stdout)
        got = {g["key"]: g["usd"] for g in rep["groups"]}
        assert abs(got[sid] - both) < 1e-5
    finally:
        if get_session(root, sid).alive:
            kill(root, sid)
        _kill_left_behind(rig.home)


@pytest.mark.timeout(300)
def test_a_gemini_worker_is_metered_from_its_session_record(rig_for: RigFor) -> None:
    """gemini reports tokens, never money: each turn of a worker is read from its own session
    record (~/.gemini/tmp/<project>/chats/) one beat later and priced with the table, equal to
    the server's usage priced; a later turn adds only itself. (Its resume is not walked here:
    gemini 0.61 sends a resumed prompt before its history, test_resume.py.)"""
    rig = rig_for("gemini")
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, "m-gemini"
    start_worker(ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42"))
    meter = Meter(rig, sid)
    try:
        code, _, _ = expect(root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        first = meter.settles(0, "gemini's first turn metered")
        assert first > 0
        rows = worker_rows(rig, sid)
        assert rows and all(r["runner"] == "gemini" for r in rows)
        assert {r.get("model") for r in rows} == {"gemini-2.5-pro"}
        meter.another_turn(first)
    finally:
        if get_session(root, sid).alive:
            kill(root, sid)


def _start_through(rig: Rig, face: str, sid: str, args: dict[str, object]) -> None:
    """`start_worker` as a user's dashboard (the HTTP API) or own agent (MCP) sends it."""
    if face == "web":
        from starlette.testclient import TestClient

        from looop.web.app import build_app
        from looop.web.auth import Guard
        from tests.web.conftest import HOST, ORIGIN, TOKEN

        guard = Guard(token=TOKEN, bind="127.0.0.1", port=80, public=(HOST,))
        with TestClient(build_app(rig.ctx, guard), base_url=ORIGIN) as c:
            assert c.get(f"/?token={TOKEN}", follow_redirects=False).status_code == 303
            r = c.post(f"/api/v1/workers/{sid}", json=args, headers={"Origin": ORIGIN})
            assert r.status_code == 200, r.text
        return
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {**rig.ctx.env, "LOOOP_DATA_DIR": str(rig.ctx.paths.data)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "looop", "mcp", "--allow-actions"], env=env
    )

    async def main() -> None:
        with anyio.fail_after(60), (rig.home / "mcp.err").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                got = await s.call_tool("start_worker", {"id": sid, **args})
                said = "".join(getattr(c, "text", "") for c in got.content)
                assert not got.is_error, said

    anyio.run(main)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("face", "policy"), [("web", "pause"), ("mcp", "stop")])
def test_a_budget_given_through_the_api_or_mcp_holds_the_worker(
    rig_for: RigFor, face: str, policy: str
) -> None:
    """budget_usd through the HTTP API and MCP's start_worker: the beat meters the real
    claude's record and holds the worker at it, by the policy given (pause: its process
    paused whole; stop: the worker killed), as `worker start --budget` does."""

    rig = rig_for("claude")
    answer_first_run_prompts(rig)
    root, sid = rig.ctx.paths.data, f"b-{face}"
    args = {"prompt": "Greet. ECHO:brief42", "budget_usd": 0.001, "on_budget": policy}
    _start_through(rig, face, sid, args)
    try:
        code, _, _ = expect(
            root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=rig.ctx.clock
        )
        assert code == 0, _screen(root, sid)
        pid = get_session(root, sid).child_pid
        assert pid is not None

        def at_budget() -> bool:
            assert rig.looop("tick").returncode == 0
            if policy == "stop":
                return not get_session(root, sid).alive
            return held(pid)

        _await(at_budget, 60, f"the worker over its budget to be {policy}ped")
        rows = json.loads(rig.looop("ls", "--all", "--json").stdout)
        row = next(r for r in rows if r["id"] == sid)
        assert row["spend_usd"] >= 0.001
        said = [
            json.loads(x)
            for x in rig.ctx.paths.events.read_text().splitlines()
            if '"worker_over_budget"' in x
        ]
        assert [(e["id"], e["policy"], e["budget"]) for e in said] == [(sid, policy, 0.001)]
        assert f"{face}: start-worker {sid} · budget $0.001, {policy} at it" in (
            rig.ctx.paths.journal.read_text()
        )
    finally:
        if get_session(root, sid).alive:
            go_on(root, sid)
            kill(root, sid)


@pytest.mark.sandbox
@pytest.mark.timeout(300)
# codex 0.169 and opencode 1.18 do not start inside srt on this machine at all (codex's
# app-server daemon cannot read its pid's start time; opencode's server errors): there is no
# boxed record of theirs to meter (tests/realcli/test_sandboxed_workers.py runs these two too)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_a_sandboxed_worker_is_metered_from_the_record_it_writes_in_the_box(
    rig_for: RigFor, cli: str
) -> None:
    """A worker inside srt (the real srt and bubblewrap, allowlisted to the scripted model)
    writes its CLI's record where the box lets it (its runner's own state under $HOME): the
    beat outside the box meters it as it meters an unboxed one."""
    from dataclasses import replace

    from looop.home.sandboxpolicy import SandboxPolicy
    from tests.sandbox.install import install

    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    rig.ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(install())})
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"ms-{cli}"
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    start_worker(
        ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42", sandbox=policy)
    )
    try:
        cmd = get_session(root, sid).cmd
        assert cmd[1:3] == ["-m", "looop.sandbox.boxrun"], cmd[:7]  # inside the box
        code, _, _ = expect(root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        want, _ = expected(rig, "ECHO:brief42")
        assert want > 0

        def metered() -> float:
            done = rig.looop("tick")
            assert done.returncode == 0, done.stderr
            return sum(float(str(r["cost_usd"])) for r in worker_rows(rig, sid))

        try:
            _await(lambda: abs(metered() - want) < 1e-5, 60, f"the boxed {cli}'s spend metered")
        except AssertionError as e:
            raise AssertionError(f"{e}: metered {metered()}; {evidence(rig)}") from None
        rows = json.loads(rig.looop("ls", "--json").stdout)
        row = next(r for r in rows if r["id"] == sid)
        assert abs(row["spend_usd"] - want) < 1e-5
    finally:
        if get_session(root, sid).alive:
            kill(root, sid)
