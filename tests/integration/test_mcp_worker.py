"""`looop mcp --worker` as a worker's agent CLI meets it: a real process driven over stdio by the
MCP SDK's own client. Only the contract's tools; each acts as the worker in LOOOP_SESSION_ID and
lands where the shell contract's verb lands; any other worker id is refused before anything
runs; no worker id at all and the server does not start."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from looop.core.context import Ctx
from looop.human.tellbox import new_tell
from tests.helpers import clean_env, wait_until

pytestmark = [pytest.mark.process, pytest.mark.timeout(90)]
CALL_S = 30
TOOLS = {"ask", "claim", "unclaim", "tell", "told", "cost_report"}
BIN = str(Path(sys.executable).parent / "looop")  # what "$LOOOP_BIN" is in a worker


def worker_env(ctx: Ctx, **extra: str) -> dict[str, str]:
    return clean_env(
        ctx.paths.data.parent,
        ctx.paths.data,
        LOOOP_CONFIG=str(ctx.paths.config),
        LOOOP_BIN=BIN,
        LOOOP_RUNNER="claude",
        **extra,
    )


@contextlib.asynccontextmanager
async def session(env: dict[str, str], errlog: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "looop", "mcp", "--worker"], env=env
    )
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s


def drive(ctx: Ctx, body: Callable[[ClientSession], Awaitable[None]], wid: str = "w1") -> None:
    async def main() -> None:
        with anyio.fail_after(CALL_S):
            async with session(
                worker_env(ctx, LOOOP_SESSION_ID=wid), ctx.paths.data.parent / "mcp.err"
            ) as s:
                await body(s)

    anyio.run(main)


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def holder(ctx: Ctx, name: str) -> str | None:
    p = ctx.paths.claims / f"{name}.json"
    return json.loads(p.read_text())["session"] if p.exists() else None


def test_it_serves_only_the_contract_and_claims_as_the_worker(ctx: Ctx) -> None:
    got: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        got["tools"] = {t.name for t in (await s.list_tools()).tools}
        got["claim"] = await s.call_tool("claim", {"name": "deploy"})
        got["held"] = holder(ctx, "deploy")
        got["unclaim"] = await s.call_tool("unclaim", {"name": "deploy"})

    drive(ctx, body)
    assert got["tools"] == TOOLS  # none of the human's tools (answer_ask, kill_worker, ...)
    assert not got["claim"].is_error, text(got["claim"])
    assert got["held"] == "w1"
    assert not got["unclaim"].is_error, text(got["unclaim"])
    assert holder(ctx, "deploy") is None


def test_another_worker_id_is_refused_and_nothing_is_written(ctx: Ctx) -> None:
    new_tell(ctx.paths.tells, "w2", "for w2 only", ctx.clock.now())
    said: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        said["claim"] = await s.call_tool("claim", {"name": "deploy", "worker": "w2"})
        said["unclaim"] = await s.call_tool("unclaim", {"name": "deploy", "worker": "w2"})
        said["told"] = await s.call_tool("told", {"worker": "w2"})
        said["ask"] = await s.call_tool("ask", {"prompt": "ok?", "worker": "w2"})
        said["cost"] = await s.call_tool("cost_report", {"usd": 1.5, "worker": "w2"})

    drive(ctx, body)
    for tool, res in said.items():
        assert res.is_error, (tool, text(res))
        assert "w1" in text(res) and "w2" in text(res), (tool, text(res))
        assert len(text(res).splitlines()) == 1, text(res)
    assert holder(ctx, "deploy") is None
    assert not ctx.paths.cost_ledger.exists() or "w2" not in ctx.paths.cost_ledger.read_text()
    assert not ctx.paths.asks.exists() or not list(ctx.paths.asks.iterdir())
    # w2's steering is still w2's to read: the refused told took nothing
    assert list(ctx.paths.tells.glob("w2-*.json"))


def test_told_and_cost_report_act_as_the_worker(ctx: Ctx) -> None:
    new_tell(ctx.paths.tells, "w1", "rebase on main first", ctx.clock.now())
    said: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        said["told"] = await s.call_tool("told", {})
        said["again"] = await s.call_tool("told", {})
        said["cost"] = await s.call_tool("cost_report", {"usd": 0.42})
        said["bad"] = await s.call_tool("cost_report", {"usd": -1})

    drive(ctx, body)
    assert "rebase on main first" in text(said["told"])
    assert "rebase on main first" not in text(said["again"])  # once only, as the verb does
    assert not said["cost"].is_error, text(said["cost"])
    ledger = ctx.paths.cost_ledger.read_text()
    rows = [json.loads(x) for x in ledger.splitlines() if x.strip()]
    assert any("w1" in json.dumps(r) and "0.42" in json.dumps(r) for r in rows), ledger
    assert said["bad"].is_error and "usd" in text(said["bad"])


def test_a_held_lease_is_refused_with_the_verbs_own_line(ctx: Ctx) -> None:
    # w2 holds it and is live (a real session), so w1's claim through MCP is refused
    from looop.sessions.client import kill, wait
    from looop.sessions.spawner import spawn
    from looop.sessions.state import SessionError

    data = ctx.paths.data
    spawn(data, "w2", ["cat"], cwd=data, env=worker_env(ctx))
    try:
        done = subprocess.run(
            [BIN, "claim", "deploy", "--session", "w2"],
            env=worker_env(ctx),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        said: dict[str, Any] = {}

        async def body(s: ClientSession) -> None:
            said["claim"] = await s.call_tool("claim", {"name": "deploy"})

        drive(ctx, body)
        assert said["claim"].is_error
        assert "held by live session 'w2'" in text(said["claim"])
        assert holder(ctx, "deploy") == "w2"
    finally:
        with contextlib.suppress(SessionError):
            kill(data, "w2")
        wait(data, "w2", 30, ctx.clock)


@pytest.mark.parametrize(
    ("wid", "said"),
    [
        (None, "LOOOP_SESSION_ID is not set"),
        ("", "LOOOP_SESSION_ID is not set"),
        ("pulse", "not a worker"),
        ("../w1", "invalid LOOOP_SESSION_ID"),
    ],
)
def test_without_a_worker_id_the_server_does_not_start(
    ctx: Ctx, wid: str | None, said: str
) -> None:
    env = worker_env(ctx) if wid is None else worker_env(ctx, LOOOP_SESSION_ID=wid)
    done = subprocess.run(
        [sys.executable, "-m", "looop", "mcp", "--worker"],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""  # nothing on the protocol's channel


def test_worker_and_allow_actions_together_are_refused(ctx: Ctx) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "looop", "mcp", "--worker", "--allow-actions"],
        env=worker_env(ctx, LOOOP_SESSION_ID="w1"),
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "--worker" in done.stderr and "--allow-actions" in done.stderr


def test_ask_waits_for_the_human_and_returns_only_the_answer(ctx: Ctx) -> None:
    got: dict[str, Any] = {}

    def pending() -> list[Path]:
        return sorted(ctx.paths.asks.glob("w1-*.json")) if ctx.paths.asks.is_dir() else []

    async def answer_when_asked() -> None:
        while not pending():
            await anyio.sleep(0.05)
        ask_id = pending()[0].stem
        got["waiting"] = "res" not in got  # the tool had not returned before the answer
        done = await anyio.run_process(
            [BIN, "answer", ask_id, "yes"], env=worker_env(ctx), check=False
        )
        assert done.returncode == 0, done.stderr

    async def body(s: ClientSession) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_when_asked)
            got["res"] = await s.call_tool(
                "ask", {"prompt": "merge now?", "options": ["yes", "no"]}
            )

    drive(ctx, body)
    assert got["waiting"] is True
    assert not got["res"].is_error, text(got["res"])
    assert text(got["res"]) == "yes"


def test_bad_arguments_and_unknown_tools_are_refused_in_one_line(ctx: Ctx) -> None:
    said: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        said["misspelt"] = await s.call_tool("claim", {"nme": "deploy"})
        said["typed"] = await s.call_tool("claim", {"name": 3})
        said["options"] = await s.call_tool("ask", {"prompt": "ok?", "options": "yes,no"})
        said["usd"] = await s.call_tool("cost_report", {"usd": "lots"})
        try:
            await s.call_tool("deploy", {})
        except Exception as e:  # the SDK raises the protocol error as its own exception
            said["unknown"] = str(e)
        said["after"] = await s.call_tool("claim", {"name": "deploy"})  # still serving

    drive(ctx, body)
    for key, want in [
        ("misspelt", ["'nme' is not an argument", "'name' is required"]),
        ("typed", ["'name' must be a string"]),
        ("options", ["'options' must be a list of strings"]),
        ("usd", ["'usd' must be a number"]),
    ]:
        res = said[key]
        assert res.is_error and len(text(res).splitlines()) == 1, (key, text(res))
        assert all(w in text(res) for w in want), (key, text(res))
    assert "deploy" in said["unknown"] and "claim" in said["unknown"]
    assert not said["after"].is_error and holder(ctx, "deploy") == "w1"
    assert not ctx.paths.asks.exists() or not list(ctx.paths.asks.iterdir())


def test_a_line_that_is_not_json_rpc_gets_an_error_and_the_server_goes_on(ctx: Ctx) -> None:
    """What a buggy client sends: each answered with a JSON-RPC error on the protocol's
    channel, the next good request still served; end of input ends the server cleanly."""
    lines = [
        "this is not json",
        json.dumps([1, 2]),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}),
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "initialize",
                "params": {"protocolVersion": "1999-01-01", "capabilities": {}},
            }
        ),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "looop", "mcp", "--worker"],
        env=worker_env(ctx, LOOOP_SESSION_ID="w1"),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    got = [json.loads(ln) for ln in done.stdout.splitlines()]
    assert [g.get("error", {}).get("code") for g in got[:3]] == [-32700, -32600, -32601]
    hello = got[3]["result"]
    # a revision it does not speak: it offers its newest, as the handshake says
    assert hello["protocolVersion"] == "2025-11-25" and "tools" in hello["capabilities"]
    assert "w1" in hello["instructions"]
    assert got[4] == {"jsonrpc": "2.0", "id": 3, "result": {}}


def test_a_cancelled_ask_ends_its_verb_and_gets_no_answer(ctx: Ctx) -> None:
    """The agent gives up on an ask (its user pressed Esc): the waiting `looop ask` ends
    with it, no answer is sent for it, and the server serves the next call."""
    import psutil  # lazy: only this test looks at processes

    def pending() -> list[Path]:
        return sorted(ctx.paths.asks.glob("w1-*.json")) if ctx.paths.asks.is_dir() else []

    proc = subprocess.Popen(
        [sys.executable, "-m", "looop", "mcp", "--worker"],
        env=worker_env(ctx, LOOOP_SESSION_ID="w1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(msg: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **msg}) + "\n")
        proc.stdin.flush()

    try:
        send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}})
        assert json.loads(proc.stdout.readline())["id"] == 1
        args = {"name": "ask", "arguments": {"prompt": "merge now?"}}
        send({"id": 2, "method": "tools/call", "params": args})
        wait_until(lambda: pending(), 20, "the ask to be filed")
        verbs = [p for p in psutil.Process(proc.pid).children() if "ask" in p.cmdline()]
        assert len(verbs) == 1
        send({"method": "notifications/cancelled", "params": {"requestId": 2}})
        send({"id": 3, "method": "ping"})
        assert json.loads(proc.stdout.readline()) == {"jsonrpc": "2.0", "id": 3, "result": {}}
        psutil.wait_procs(verbs, timeout=10)
        assert not verbs[0].is_running() or verbs[0].status() == psutil.STATUS_ZOMBIE
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""  # nothing ever answered the cancelled call
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_requests_from_a_file_are_served_too(ctx: Ctx, tmp_path: Path) -> None:
    """Not every stdin is a pipe: requests typed into a file and redirected in are answered
    (the event loop cannot watch a regular file; a thread reads it instead)."""
    requests = tmp_path / "requests.jsonl"
    ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    listing = {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}
    requests.write_text(json.dumps(ping) + "\n" + json.dumps(listing) + "\n")
    with requests.open() as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "looop", "mcp", "--worker"],
            env=worker_env(ctx, LOOOP_SESSION_ID="w1"),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 0, done.stderr
    got = [json.loads(ln) for ln in done.stdout.splitlines()]
    assert got[0] == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert {t["name"] for t in got[1]["result"]["tools"]} == TOOLS
