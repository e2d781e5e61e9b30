"""The config's equivalent of `looop mcp --allow-actions`: "mcp": {"allow_actions": true} lets
the acting tools act (journaled as mcp); false, or no such key, keeps the server read-only; a
bad value stops `looop mcp` with one line naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from mcp.client.session import ClientSession

from looop.core.context import Ctx
from tests.helpers import clean_env
from tests.integration.test_mcp import drive, journal, text

pytestmark = [pytest.mark.process, pytest.mark.timeout(90)]


def _set_mcp(ctx: Ctx, mcp: object) -> None:
    p = ctx.paths.config
    cfg = json.loads(p.read_text()) if p.exists() else {}
    cfg["mcp"] = mcp
    p.write_text(json.dumps(cfg))


@pytest.mark.parametrize("allow", [True, False])
def test_the_configs_allow_actions_lets_the_tools_act(ctx: Ctx, allow: bool) -> None:
    _set_mcp(ctx, {"allow_actions": allow})
    got: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        got["res"] = await s.call_tool("write_goal", {"id": "g1", "body": "tests pass"})

    drive(ctx, body)  # no --allow-actions
    if allow:
        assert not got["res"].is_error, text(got["res"])
        assert ctx.paths.goal("g1").read_text().strip() == "tests pass"
        assert "mcp: write-goal g1" in journal(ctx)
    else:
        assert got["res"].is_error and "allow_actions" in text(got["res"])
        assert not ctx.paths.goal("g1").exists()
        assert journal(ctx) == ""


def test_a_bad_mcp_config_stops_the_server_in_one_line(ctx: Ctx) -> None:
    _set_mcp(ctx, {"allow_actions": "yes"})
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_CONFIG=str(ctx.paths.config))
    done = subprocess.run(
        [sys.executable, "-m", "looop", "mcp"],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "mcp.allow_actions" in done.stderr and "true or false" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""
