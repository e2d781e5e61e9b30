"""The real codex reading looop's worker wiring: the `-c mcp_servers.looop.*` overrides
workers/mcpwire.py puts on the codex preset's worker line give codex an enabled stdio server
`looop mcp --worker` with the worker's variables passed on and an ask's long wait allowed.

(Calling the tool from a scripted turn is not proven here: codex 0.169 defers MCP tools behind
its tool_search, which the scripted model server does not drive.)"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.config import PRESETS
from looop.core.context import Ctx
from looop.workers.mcpwire import wire
from tests.realcli.harness import cli_env
from tests.realcli.model_server import ModelServer

pytestmark = pytest.mark.timeout(120)
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
