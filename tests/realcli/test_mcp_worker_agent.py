"""The real claude TUI as a looop worker calling the worker contract as an MCP tool: looop wires
`looop mcp --worker` into claude's own MCP config at start, the scripted model's reply calls
its `claim` tool, and the lease is held by that worker — on this machine and inside srt."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.home.sandboxpolicy import SandboxPolicy
from looop.sessions.client import expect, kill, screenshot, send, send_keys
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import until, wait_until
from tests.realcli.harness import Rig, answer_first_run_prompts

RigFor = Callable[[str], Rig]
OFFER = "Try the new fullscreen renderer?"
BIN = str(Path(sys.executable).parent / "looop")


def _holder(root: Path, name: str) -> str | None:
    p = root / "claims" / f"{name}.json"
    try:
        return str(json.loads(p.read_text())["session"])
    except (OSError, ValueError):
        return None


def _dismiss_offers(root: Path) -> None:
    """claude's offer of its new renderer, shown again inside the sandbox (where it cannot
    note that it asked): declined, as a user would."""
    if OFFER in _screen(root):
        send_keys(root, "w1", ["Escape"])
        wait_until(lambda: OFFER not in _screen(root), timeout=20, what="the offer dismissed")


def _screen(root: Path) -> str:
    return str(screenshot(root, "w1", "plain", trim=True).get("text", ""))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("boxed", [False, True], ids=["here", "sandboxed"])
def test_a_real_claude_worker_claims_a_lease_through_mcp(rig_for: RigFor, boxed: bool) -> None:
    rig = rig_for("claude")
    rig.use_preset(mcp={"worker_tools": True})
    answer_first_run_prompts(rig)
    env = {
        **rig.ctx.env,
        "ENABLE_TOOL_SEARCH": "false",  # the MCP tools advertised up front, not deferred
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],
    }
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
        # claude's TUI takes its turns before its MCP servers are up: the brief is given
        # again until a turn has the tools
        for attempt in range(8):
            _dismiss_offers(root)
            send(root, "w1", f"Take the deploy lease (try {attempt}).", newline=False)
            code, _, _ = expect(
                root, "w1", rf"try {attempt}", screen=True, timeout_s=20, clock=ctx.clock
            )
            assert code == 0
            send_keys(root, "w1", ["Enter"])
            if until(lambda: _holder(root, "deploy") is not None, 10):
                break
        assert _holder(root, "deploy") == "w1"
        # claude sent the tool's answer back to the model: the verb's own line
        wait_until(
            lambda: any("claimed deploy" in c.text() for c in rig.server.model_calls()),
            timeout=60,
        )
    except AssertionError:
        print(screenshot(root, "w1", "plain", trim=True).get("text", ""))
        print(get_session(root, "w1").cmd)
        raise
    finally:
        kill(root, "w1")
    assert not get_session(root, "w1").alive
