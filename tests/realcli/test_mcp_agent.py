"""The real claude CLI using looop's MCP server: its MCP config runs `looop mcp
--allow-actions`, the scripted model's reply calls looop's write_goal tool, and the goal and
its journal line (as mcp) are in the data dir afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.realcli.harness import cli_env
from tests.realcli.model_server import ModelServer

pytestmark = pytest.mark.timeout(180)


def test_claude_calls_a_looop_tool_and_its_effect_is_journaled(
    ctx: Ctx, model_server: ModelServer, realcli_bin: Path
) -> None:
    home = ctx.paths.data.parent / "home-claude"
    env = cli_env("claude", home, model_server, realcli_bin)
    env["ENABLE_TOOL_SEARCH"] = "false"  # the MCP tools advertised up front, not deferred
    looop_env = {
        "LOOOP_DATA_DIR": str(ctx.paths.data),
        "LOOOP_CONFIG": str(ctx.paths.config),
        "LOOOP_RUNTIME_DIR": ctx.env["LOOOP_RUNTIME_DIR"],
        "PATH": env["PATH"],
        "HOME": str(home),
    }
    server = {
        "command": sys.executable,
        "args": ["-m", "looop", "mcp", "--allow-actions"],
        "env": looop_env,
    }
    config = ctx.paths.data.parent / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"looop": server}}))
    model_server.tool_call = (
        "mcp__looop__write_goal",
        {"id": "ship", "body": "v1 is tagged and released"},
    )
    argv = [
        "claude",
        "-p",
        "set the goal ship",
        "--mcp-config",
        str(config),
        "--strict-mcp-config",
        "--allowedTools",
        "mcp__looop__write_goal",
        "--output-format",
        "json",
    ]
    done = subprocess.run(
        argv, env=env, cwd=ctx.paths.data, capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    # the model asked for the tool, claude ran it through looop mcp, and sent back its result
    calls = model_server.model_calls()
    assert any("mcp: write-goal ship" in c.text() for c in calls)  # the tool's result
    assert ctx.paths.goal("ship").read_text().strip() == "v1 is tagged and released"
    assert "mcp: write-goal ship" in ctx.paths.journal.read_text()
    steered = [json.loads(x) for x in ctx.paths.events.read_text().splitlines() if '"steered"' in x]
    assert [r["actor"] for r in steered] == ["mcp"]
    assert model_server.outbound() == []
