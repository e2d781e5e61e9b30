"""One needs-you queue on every face (issue 57 item 3), over real local workers: one asking
through `looop ask`, one at an approval prompt the beat's screen look recognizes, one paused
at its spend budget by the beat's meter. `looop needs --json`, GET /api/v1/needs and MCP's
looop://needs list the same items; the human is notified once per item, not every beat."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sessions.state import get_session
from looop.web.app import build_app
from looop.web.auth import Guard
from tests.helpers import clean_env, held, kill_sessions, wait_until, wire
from tests.integration.test_mcp import drive

pytestmark = pytest.mark.timeout(180)

ASKER = '"$LOOOP_BIN" ask --prompt "ship it?" --options yes,no; sleep 600; : {{prompt_file}}'
# what claude draws at its approval prompt (runners/claude.py), from a plain script
PROMPTER = "printf 'Do you want to proceed?\\n❯ 1. Yes\\n  2. No\\n'; sleep 600; : {{prompt_file}}"
SPENDER = "sleep 600; : {{prompt_file}}"
TOKEN = "t" * 43


def _looop(ctx: Ctx, *args: str) -> str:
    env = clean_env(
        ctx.paths.data.parent,
        ctx.paths.data,
        LOOOP_CONFIG=str(ctx.paths.config),
        LOOOP_INTERVAL="3600",  # a pulse beats when woken, never on its interval here
    )
    r = subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _web(ctx: Ctx) -> Any:
    guard = Guard(token=TOKEN, bind="127.0.0.1", port=80, public=("testserver",))
    with TestClient(build_app(ctx, guard), base_url="http://testserver") as c:
        c.get(f"/?token={TOKEN}", follow_redirects=False)
        return c.get("/api/v1/needs").json()


def _mcp(ctx: Ctx) -> Any:
    got: list[Any] = []

    async def body(s: ClientSession) -> None:
        got.append(json.loads((await s.read_resource("looop://needs")).contents[0].text))

    drive(ctx, body)
    return got[0]


def _same(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in n.items() if k != "since"} for n in items]


def _told(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _start(ctx: Ctx, told: Path) -> None:
    hook = f'echo "$LOOOP_ID" >> {told}'
    wire(ctx, [{"decision": {"action": "noop"}}] * 20, worker=SPENDER, notification=hook)
    _looop(ctx, "worker", "start", "asker", "x", "--command", ASKER)
    _looop(ctx, "worker", "start", "prompter", "x", "--command", PROMPTER)
    _looop(ctx, "worker", "start", "spender", "x", "--command", SPENDER, "--budget", "0.01")
    log = ctx.paths.data / "sessions" / "prompter" / "output.log"
    wait_until(lambda: (ctx.paths.asks / "asker-1.json").exists(), 30, "the worker's ask")
    wait_until(lambda: log.exists() and "1. Yes" in log.read_text(), 30, "the approval prompt")
    _looop(ctx, "cost", "report", "worker", "spender", "custom", "0.05")


def test_every_face_shows_the_same_queue_and_each_item_is_told_once(
    ctx: Ctx, tmp_path: Path
) -> None:
    told = tmp_path / "told.txt"
    try:
        _start(ctx, told)
        tick(ctx)  # the meter pauses the spender; the screen look finds the prompt
        pid = get_session(ctx.paths.data, "spender").child_pid
        assert pid is not None
        wait_until(lambda: held(pid), 10, "the spender paused at its budget")
        tick(ctx)  # the next beat: nothing new joins, nothing is told again
        cli = json.loads(_looop(ctx, "needs", "--json"))
        kinds = sorted((n["kind"], n["worker"]) for n in cli)
        assert kinds == [("approval", "prompter"), ("ask", "asker"), ("budget", "spender")]
        by = {n["worker"]: n for n in cli}
        assert by["asker"]["answer"] == "looop answer asker-1 yes"
        assert "Do you want to proceed?" in by["prompter"]["what"]
        assert by["prompter"]["answer"] == "looop attach prompter"
        assert by["spender"]["answer"] == "looop worker continue spender --budget USD"
        # since when: the ask's stamp, a worker's last output (the in-process web's test clock
        # reads that on its own fixed time line; the CLI and MCP processes on the real one)
        assert all(isinstance(n["since"], float | int) for n in cli)
        assert _same(_web(ctx)) == _same(cli)
        mcp = _mcp(ctx)
        assert _same(mcp) == _same(cli)
        assert all(abs(a["since"] - b["since"]) < 5 for a, b in zip(mcp, cli, strict=True))
        want = ["asker-1", "prompter", "spender"]
        wait_until(lambda: sorted(_told(told)) == want, 30, f"one notification each: {want}")
        tick(ctx)  # a later beat: what tells is said once each in the events, not again
        said = [json.loads(x)["event"] for x in ctx.paths.events.read_text().splitlines()]
        assert [said.count(e) for e in ("worker_needs_input", "worker_over_budget")] == [1, 1]
        assert sorted(_told(told)) == want
        text = _looop(ctx, "needs")
        assert text.startswith("3 waiting on you\n") and "→ looop attach prompter" in text
    finally:
        kill_sessions(ctx.paths.data)


# a custom CLI's own question (no runner pattern names it); a build log that pauses on a `:`
ASKING = "read -p 'Do you want to proceed? (y/N) ' a; sleep 600; : {{prompt_file}}"
BUILDING = "echo 'Compiling looop:'; sleep 600; : {{prompt_file}}"


def test_a_custom_prompt_is_in_needs_within_seconds_without_a_beat(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}], worker=SPENDER)
    try:
        _looop(ctx, "worker", "start", "builder", "x", "--command", BUILDING)
        built = ctx.paths.data / "sessions" / "builder" / "output.log"
        wait_until(lambda: built.exists() and "looop:" in built.read_text(), 30, "the build log")
        _looop(ctx, "worker", "start", "asker", "x", "--command", ASKING)
        log = ctx.paths.data / "sessions" / "asker" / "output.log"
        wait_until(lambda: log.exists() and "(y/N)" in log.read_text(), 30, "the prompt")
        shown = time.monotonic()  # on the worker's screen: from here the human waits
        listed: list[dict[str, Any]] = []
        while not listed and time.monotonic() < shown + 5:
            listed = [
                n for n in json.loads(_looop(ctx, "needs", "--json")) if n["worker"] == "asker"
            ]
        assert listed, "the prompt was not in `looop needs` within 5 s"
        assert listed[0]["kind"] == "input"
        assert listed[0]["what"] == "its screen asks: Do you want to proceed? (y/N)"
        # every face reads the same rows: the web's and MCP's queues hold it too
        assert _same(_web(ctx)) == _same(_mcp(ctx)) == _same(listed)
        ls = _looop(ctx, "ls")
        assert "needs-input" in next(line for line in ls.splitlines() if "asker" in line)
        # the build log, quiet longer on its `:` line, is no prompt: the kernel says it sleeps
        assert "busy" in next(line for line in ls.splitlines() if "builder" in line)
        # answered, it prints again: it waits no more
        _looop(ctx, "send", "asker", "y")
        wait_until(lambda: "asker" not in _looop(ctx, "needs"), 5, "the answered prompt gone")
    finally:
        kill_sessions(ctx.paths.data)


def test_a_custom_prompt_wakes_a_resting_pulse_that_tells_the_human_within_seconds(
    ctx: Ctx, tmp_path: Path
) -> None:
    told = tmp_path / "told.txt"
    wire(
        ctx,
        [{"decision": {"action": "noop"}}] * 20,
        worker=SPENDER,
        notification=f'echo "$LOOOP_ID" >> {told}',
    )
    try:
        _looop(ctx, "up")
        _looop(ctx, "worker", "start", "asker", "x", "--command", ASKING)
        log = ctx.paths.data / "sessions" / "asker" / "output.log"
        wait_until(lambda: log.exists() and "(y/N)" in log.read_text(), 30, "the prompt")
        shown = time.monotonic()
        wait_until(lambda: "asker" in _told(told), 5, "the human told of the prompt")
        assert time.monotonic() - shown < 5
    finally:
        _looop(ctx, "down")
        kill_sessions(ctx.paths.data)
