"""The real opencode reading looop's worker wiring: OPENCODE_CONFIG_CONTENT, as
workers/mcpwire.py sets it for an opencode worker, gives opencode the server `looop mcp
--worker`, which connects with the worker's LOOOP_SESSION_ID passed on — and fails to start
without one (so it is the worker's own variables that reach it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.runners.presets import PRESETS
from looop.workers.mcpwire import wire
from tests.realcli.harness import cli_env
from tests.realcli.model_server import ModelServer

pytestmark = pytest.mark.timeout(180)
BIN = str(Path(sys.executable).parent / "looop")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _mcp_list(env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        ["opencode", "mcp", "list"], env=env, cwd=cwd, capture_output=True, text=True, timeout=90
    )
    return ANSI.sub("", done.stdout + done.stderr)


@pytest.mark.parametrize("inside", [True, False], ids=["worker", "no-worker-id"])
def test_opencode_connects_the_worker_server_it_is_wired_with(
    ctx: Ctx, model_server: ModelServer, realcli_bin: Path, inside: bool
) -> None:
    env = cli_env("opencode", ctx.paths.data.parent / "home-opencode", model_server, realcli_bin)
    env["LOOOP_DATA_DIR"] = str(ctx.paths.data)
    env["LOOOP_RUNTIME_DIR"] = os.environ["LOOOP_RUNTIME_DIR"]
    if inside:
        env["LOOOP_SESSION_ID"] = "w1"
    line = PRESETS["opencode"]["worker"].replace("{{prompt_file}}", "/d/prompts/w1.md")
    assert wire(line, env, BIN) == line  # opencode takes it from its environment
    said = _mcp_list(env, ctx.paths.data)
    row = next((ln for ln in said.splitlines() if "looop" in ln and "--worker" not in ln), "")
    if inside:
        assert "connected" in row, said
    else:
        assert "connected" not in row and "fail" in row.lower(), said
