"""The real codex and looop's worker wiring: the `-c mcp_servers.looop.*` overrides
workers/mcpwire.py puts on the codex preset's worker line give codex an enabled stdio server
`looop mcp --worker` with the worker's variables passed on and an ask's long wait allowed —
and the real codex TUI as a looop worker calls its `claim` tool, on this machine and inside
srt. codex 0.169 defers MCP tools behind its client-side `tool_search`: the scripted model
searches first, then calls what the search exposed (namespace `mcp__looop`, tool `claim`)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.sandboxpolicy import SandboxPolicy
from looop.runners.presets import PRESETS
from looop.sessions.client import expect, kill, screenshot, send, send_keys
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.mcpwire import wire
from looop.workers.started import StartRequest
from tests.helpers import until, wait_until
from tests.realcli.harness import Rig, answer_first_run_prompts, cli_env
from tests.realcli.model_server import ModelServer
from tests.realcli.test_mcp_worker_agent import _holder
from tests.realcli.test_resume_named import _kill_left_behind

pytestmark = pytest.mark.timeout(120)
RigFor = Callable[[str], Rig]
BIN = str(Path(sys.executable).parent / "looop")


def test_codex_reads_the_worker_server_it_is_wired_with(
    ctx: Ctx, model_server: ModelServer, realcli_bin: Path
) -> None:
    env = cli_env("codex", ctx.paths.data.parent / "home-codex", model_server, realcli_bin)
    line = PRESETS["codex"]["worker"].replace("{{prompt_file}}", "/d/prompts/w1.md")
    words = shlex.split(wire(line, env, BIN))
    flags = []
    for i in range(1, len(words) - 1, 2):  # the -c pairs wire() put after the program
        if words[i] != "-c":
            break
        flags += words[i : i + 2]
    done = subprocess.run(
        ["codex", *flags, "mcp", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    servers = {s["name"]: s for s in json.loads(done.stdout)}
    looop = servers["looop"]
    assert looop["enabled"] is True
    assert looop["transport"]["type"] == "stdio"
    assert looop["transport"]["command"] == BIN
    assert looop["transport"]["args"] == ["mcp", "--worker"]
    assert "LOOOP_SESSION_ID" in looop["transport"]["env_vars"]
    assert looop["tool_timeout_sec"] >= 86400


def _searched(server: ModelServer) -> bool:
    return any('"tool_search_output"' in c.text() for c in server.model_calls())


@pytest.mark.timeout(240)
@pytest.mark.parametrize("boxed", [False, True], ids=["here", "sandboxed"])
def test_a_real_codex_worker_claims_a_lease_through_mcp(rig_for: RigFor, boxed: bool) -> None:
    rig = rig_for("codex")
    rig.use_preset(mcp={"worker_tools": True})
    answer_first_run_prompts(rig)
    env = {**rig.ctx.env, "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"]}
    policy = None
    if boxed:
        from tests.sandbox.install import install  # lazy: only the boxed run needs srt

        env["LOOOP_SRT"] = str(install())
        policy = SandboxPolicy(True, domains=(f"127.0.0.1:{rig.server.port}",))
    ctx = replace(rig.ctx, env=env, bin=BIN)
    root = ctx.paths.data
    rig.server.tool_call = ("mcp__looop__claim", {"name": "deploy"})
    start_worker(
        ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet. ECHO:ready1", sandbox=policy)
    )
    try:
        code, _, _ = expect(
            root, "w1", r"ANSWER:ready1", screen=True, timeout_s=90, clock=ctx.clock
        )
        assert code == 0
        # codex's first turn may go before its MCP servers are up (their tools are then
        # not among the deferred ones): the brief is given again until a turn finds them
        for attempt in range(8):
            send(root, "w1", f"Take the deploy lease (try {attempt}).", newline=False)
            code, _, _ = expect(
                root, "w1", rf"try {attempt}", screen=True, timeout_s=20, clock=ctx.clock
            )
            assert code == 0
            send_keys(root, "w1", ["Enter"])
            if until(lambda: _holder(root, "deploy") is not None, 10):
                break
        assert _holder(root, "deploy") == "w1"
        # the tool was found through codex's own search, then its answer went back to the
        # model: the verb's own line
        assert _searched(rig.server)
        wait_until(
            lambda: any(
                "function_call_output" in c.text() and "claimed deploy" in c.text()
                for c in rig.server.model_calls()
            ),
            timeout=60,
        )
    except AssertionError:
        print(screenshot(root, "w1", "plain", trim=True).get("text", ""))
        print(get_session(root, "w1").cmd)
        raise
    finally:
        kill(root, "w1")
        _kill_left_behind(rig.home)  # codex's app-server daemon
    assert not get_session(root, "w1").alive
