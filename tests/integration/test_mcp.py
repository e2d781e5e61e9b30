"""`looop mcp` as an agent meets it: a real `looop mcp` process driven over stdio by the MCP
SDK's own client. Listing, reading, calling; read-only by default; every refusal one clear
line and no trace left; every action journaled and recorded as done by mcp."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import answer, new_ask
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session
from looop.spend.spent import budgets
from tests.clocks import FixedClock
from tests.helpers import clean_env, said, wait_until

pytestmark = [pytest.mark.process, pytest.mark.timeout(90)]
CALL_S = 30  # each session's whole conversation, start to close
TOOLS = {
    "list_asks",
    "answer_ask",
    "tell_worker",
    "send_line",
    "start_worker",
    "kill_worker",
    "write_goal",
    "pause",
    "resume",
    "review_comment",
    "review_send",
}


@contextlib.asynccontextmanager
async def session(ctx: Ctx, *flags: str) -> AsyncIterator[ClientSession]:
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_CONFIG=str(ctx.paths.config))
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "looop", "mcp", *flags], env=env
    )
    with (ctx.paths.data.parent / "mcp.err").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s


def drive(ctx: Ctx, body: Callable[[ClientSession], Awaitable[None]], *flags: str) -> None:
    async def main() -> None:
        with anyio.fail_after(CALL_S):
            async with session(ctx, *flags) as s:
                await body(s)

    anyio.run(main)


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def journal(ctx: Ctx) -> str:
    p: Path = ctx.paths.journal
    return p.read_text() if p.exists() else ""


def records(ctx: Ctx) -> list[dict[str, Any]]:
    p = ctx.paths.events
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


@pytest.fixture
def worker(ctx: Ctx) -> Any:
    """w1: a live `cat` session (it echoes what it is sent)."""
    data = ctx.paths.data
    spawn(data, "w1", ["cat"], cwd=data, env=dict(os.environ))
    try:
        yield "w1"
    finally:
        with contextlib.suppress(SessionError):
            kill(data, "w1")
        wait(data, "w1", 30, FixedClock())


def test_lists_its_tools_and_resources_and_reads_state_goals_and_asks(ctx: Ctx) -> None:
    ctx.paths.goals.mkdir(parents=True, exist_ok=True)
    ctx.paths.goal("g1").write_text("ship the parser\n")
    p = ctx.paths
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, ["yes", "no"], ctx.clock.now())

    async def body(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == TOOLS
        assert set(tools["answer_ask"].input_schema["required"]) == {"id", "answer"}
        assert tools["list_asks"].annotations.read_only_hint is True
        assert tools["kill_worker"].annotations.destructive_hint is True
        uris = {str(r.uri) for r in (await s.list_resources()).resources}
        assert {"looop://state", "looop://goals", "looop://journal", "looop://runs"} <= uris
        assert {"looop://asks", "looop://workers"} <= uris
        templates = (await s.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "looop://workers/{id}/screen",
            "looop://workers/{id}/review",
        }
        state = json.loads((await s.read_resource("looop://state")).contents[0].text)
        assert state["data_dir"] == str(ctx.paths.data) and state["goals"] == ["g1"]
        goals = json.loads((await s.read_resource("looop://goals")).contents[0].text)
        assert goals == [{"id": "g1", "body": "ship the parser\n"}]
        asks = json.loads((await s.read_resource("looop://asks")).contents[0].text)
        assert [a["id"] for a in asks] == [ask["id"]]
        listed = await s.call_tool("list_asks", {})
        assert not listed.is_error
        assert [a["id"] for a in listed.structured_content["result"]] == [ask["id"]]

    drive(ctx, body)


def test_state_is_current_a_new_ask_shows_and_an_answered_one_goes_with_no_beat(
    ctx: Ctx,
) -> None:
    p = ctx.paths

    async def read(s: ClientSession, uri: str) -> Any:
        return json.loads((await s.read_resource(uri)).contents[0].text)

    async def body(s: ClientSession) -> None:
        assert (await read(s, "looop://state"))["asks"] == []
        ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())
        assert (await read(s, "looop://state"))["asks"] == [ask["id"]]
        answer(p.asks, p.answers, ask["id"], "yes", ctx.clock.now())
        assert (await read(s, "looop://state"))["asks"] == []
        assert await read(s, "looop://asks") == []  # the two resources agree

    drive(ctx, body)


def test_read_only_by_default_an_acting_tool_refuses_and_leaves_no_trace(ctx: Ctx) -> None:
    p = ctx.paths
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())

    async def body(s: ClientSession) -> None:
        for name, args in (
            ("write_goal", {"id": "g1", "body": "x"}),
            ("answer_ask", {"id": ask["id"], "answer": "yes"}),
            ("pause", {}),
        ):
            got = await s.call_tool(name, args)
            assert got.is_error, name
            assert "read-only" in text(got) and "--allow-actions" in text(got)

    drive(ctx, body)
    assert not ctx.paths.goal("g1").exists()
    assert not (ctx.paths.answers / f"{ask['id']}.json").exists()
    assert journal(ctx) == ""


def test_actions_go_through_the_executor_and_mailbox_journaled_as_mcp(
    ctx: Ctx, worker: str
) -> None:
    p = ctx.paths
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, ["yes", "no"], ctx.clock.now())

    async def body(s: ClientSession) -> None:
        got = await s.call_tool("write_goal", {"id": "g1", "body": "tests pass"})
        assert not got.is_error, text(got)
        got = await s.call_tool("answer_ask", {"id": ask["id"], "answer": "yes"})
        assert not got.is_error, text(got)
        got = await s.call_tool("tell_worker", {"id": worker, "message": "rebase first"})
        assert not got.is_error, text(got)
        got = await s.call_tool("send_line", {"id": worker, "text": "hello-from-mcp"})
        assert not got.is_error, text(got)

        async def on_screen() -> bool:
            res = await s.read_resource(f"looop://workers/{worker}/screen")
            return "hello-from-mcp" in res.contents[0].text

        for _ in range(200):  # cat echoes it: the screen resource shows it once it lands
            if await on_screen():
                break
            await anyio.sleep(0.05)
        assert await on_screen()
        got = await s.call_tool("kill_worker", {"id": worker, "reason": "done"})
        assert not got.is_error, text(got)
        lines = json.loads((await s.read_resource("looop://journal")).contents[0].text)
        assert any("mcp: kill" in json.dumps(x) for x in lines)

    drive(ctx, body, "--allow-actions")
    assert ctx.paths.goal("g1").read_text().strip() == "tests pass"
    assert json.loads((ctx.paths.answers / f"{ask['id']}.json").read_text())["answer"] == "yes"
    wait_until(lambda: not get_session(ctx.paths.data, worker).alive, 10, "the worker killed")
    j = journal(ctx) + said(ctx.paths.data)
    for line in (
        "mcp: write-goal g1",
        f"mcp: answered {ask['id']}: yes",
        "mcp: told w1: rebase first",
        "mcp: kill",
    ):
        assert line in j, (line, j)
    actors = {r.get("actor") for r in records(ctx) if r["event"] in ("answer", "tell", "steered")}
    assert actors == {"mcp"}


def test_bad_input_is_refused_in_one_line_and_changes_nothing(ctx: Ctx) -> None:
    p = ctx.paths
    ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, ["yes", "no"], ctx.clock.now())

    async def body(s: ClientSession) -> None:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("answer_ask", {"id": "nope-9", "answer": "x"}, "no ask"),
            ("answer_ask", {"id": ask["id"], "answer": "maybe"}, "takes one of"),
            ("answer_ask", {"id": ask["id"]}, "answer"),  # missing argument
            ("write_goal", {"id": "../escape", "body": "x"}, "goal"),
            ("write_goal", {"id": "g1", "body": "   "}, "empty"),
            ("tell_worker", {"id": "ghost", "message": "hi"}, "no worker"),
            ("kill_worker", {"id": "pulse"}, "pulse"),
            ("start_worker", {"id": "w2", "prompt": ""}, "empty"),
            ("answer_ask", {"id": ask["id"], "answer": "yes\x00"}, "NUL"),
            ("write_goal", {"id": "g1", "body": "a\x00b"}, "NUL"),
            ("no_such_tool", {}, "no_such_tool"),
        ]
        for name, args, says in cases:
            got = await s.call_tool(name, args)
            assert got.is_error, (name, args)
            msg = text(got)
            assert says in msg and "\n" not in msg.strip() and "Traceback" not in msg, msg
        with pytest.raises(Exception, match="ghost"):
            await s.read_resource("looop://workers/ghost/screen")
        # the server is still up and reading after every refusal
        assert (await s.read_resource("looop://state")).contents

    drive(ctx, body, "--allow-actions")
    assert not (ctx.paths.answers / f"{ask['id']}.json").exists()
    assert not (ctx.paths.data.parent / "escape.md").exists()
    assert not ctx.paths.goal("g1").exists()
    assert journal(ctx) == ""


def test_start_worker_takes_a_budget_checked_journaled_and_kept(ctx: Ctx) -> None:
    """budget_usd and on_budget as `worker start --budget/--on-budget`: a bad one refused in
    one line before anything is written, a good one kept for the beat's meter and journaled."""
    worker = "cat {{prompt_file}} -"  # no agent CLI: it shows its brief and stays alive
    store.write_json(ctx.paths.config, {"default": "r", "runners": {"r": {"worker": worker}}})

    async def body(s: ClientSession) -> None:
        bad: list[tuple[dict[str, Any], str]] = [
            ({"budget_usd": -1}, "'budget_usd' must be a number of USD above 0"),
            ({"budget_usd": 0}, "'budget_usd' must be a number of USD above 0"),
            ({"budget_usd": 1e9}, "at most 10000"),
            ({"budget_usd": "five"}, "'budget_usd'"),
            ({"budget_usd": 5, "on_budget": "explode"}, "'on_budget'"),
        ]
        for extra, says in bad:
            got = await s.call_tool("start_worker", {"id": "w3", "prompt": "go", **extra})
            assert got.is_error, extra
            msg = text(got)
            assert says in msg and "\n" not in msg.strip() and "Traceback" not in msg, msg
        assert not (ctx.paths.sessions / "w3").exists()
        assert budgets(str(ctx.paths.data)) == {} and journal(ctx) == ""
        args = {"id": "w3", "prompt": "go", "budget_usd": 2.5}
        got = await s.call_tool("start_worker", args)
        assert not got.is_error, text(got)

    try:
        drive(ctx, body, "--allow-actions")
        assert get_session(ctx.paths.data, "w3").alive
        assert budgets(str(ctx.paths.data)) == {"w3": (2.5, "pause")}
        assert "mcp: start-worker w3 · budget $2.50, pause at it" in journal(ctx)
    finally:
        with contextlib.suppress(SessionError):
            kill(ctx.paths.data, "w3")
            wait(ctx.paths.data, "w3", 30, FixedClock())
