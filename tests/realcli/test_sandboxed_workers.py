"""The real claude and pi TUIs as sandboxed workers (the real srt and bubblewrap) against the
local scripted model server, allowlisted: each does its job — the brief answered on screen —
while its sandbox stands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.sandboxpolicy import SandboxPolicy
from looop.sessions import expect, get_session, kill, screenshot
from looop.workers.launch import start_worker
from tests.realcli.harness import Rig, answer_first_run_prompts
from tests.sandbox.install import install

RigFor = Callable[[str], Rig]


def _screen(root: Path, sid: str) -> str:
    return str(screenshot(root, sid, "plain", trim=True).get("text", ""))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_a_real_cli_does_its_job_inside_the_sandbox(rig_for: RigFor, cli: str) -> None:
    rig = rig_for(cli)
    srt = install()
    answer_first_run_prompts(rig)
    ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(srt)})
    root = ctx.paths.data
    port = rig.server.port
    policy = SandboxPolicy(True, domains=(f"127.0.0.1:{port}",))
    start_worker(ctx, ctx.knobs(), "w1", "Greet the fleet. ECHO:brief42", sandbox=policy)
    assert (root / "sandbox" / "w1" / "srt.json").is_file()
    assert get_session(root, "w1").cmd[0] == str(srt)  # the CLI runs inside srt, not beside it
    code, _, _ = expect(root, "w1", r"ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
    assert code == 0, _screen(root, "w1")
    kill(root, "w1")
    assert not get_session(root, "w1").alive
