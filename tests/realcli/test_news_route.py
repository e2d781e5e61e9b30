"""News routed to its owner with the real claude (issue 57): a claude worker on branch looop/w1
of a real repository, the pack's `tests` sensor red in its checkout, one beat whose decider —
claude too, against the scripted model — tells w1; the worker's claude runs the fix through its
own shell tool and the sensor reads green."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from looop.loop.tick import tick
from looop.seed.pack import render
from looop.sessions.client import expect, kill, screenshot
from looop.workers import treerecord
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.realcli.harness import Rig, answer_first_run_prompts, git_repo
from tests.realcli.model_server import PROBE_MARK

RigFor = Callable[[str], Rig]
SUITE = "def test_ok():\n    assert True\n\ndef test_math():\n    assert 1 + 1 == 3\n"
TELL = f"{PROBE_MARK} CI is red on your branch: make test_math pass. ECHO:fixed"


def _sensor(script: Path) -> dict[str, Any]:
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    return dict(json.loads(done.stdout))


@pytest.mark.timeout(240)
def test_claude_on_the_red_branch_is_told_and_fixes_it(rig_for: RigFor) -> None:
    rig = rig_for("claude")
    answer_first_run_prompts(rig)
    ctx, root = rig.ctx, rig.ctx.paths.data
    repo = git_repo(root.parent / "repo", "test_suite.py", SUITE)
    state = json.loads((rig.home / ".claude.json").read_text())  # its checkout trusted too
    state["projects"][str(ctx.paths.checkouts / "w1")] = {"hasTrustDialogAccepted": True}
    (rig.home / ".claude.json").write_text(json.dumps(state))
    start_worker(ctx, ctx.knobs(), StartRequest("w1", "Wait for news. ECHO:ready", repo=str(repo)))
    try:
        code, _, _ = expect(root, "w1", "ANSWER:ready", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0, screenshot(root, "w1", "plain").get("text", "")
        tree = treerecord.load(ctx, "w1")
        assert tree is not None and tree.branch == "looop/w1"
        # a pytest of the worker's repository: the options this run was given are not its
        cmd = f"env -u PYTEST_ADDOPTS {sys.executable} -m pytest -q -p no:cacheprovider"
        cmd += " test_suite.py"
        ctx.paths.sensors.mkdir(exist_ok=True)
        sensor = ctx.paths.sensors / "tests.sh"
        sensor.write_text(render("tests", {"cmd": cmd, "dir": tree.path}, tree.path))
        sensor.chmod(0o755)
        fix = f"sed -i 's/1 + 1 == 3/1 + 1 == 2/' '{Path(tree.path) / 'test_suite.py'}'"
        rig.server.worker_shell = fix
        rig.server.decision = {"action": "steer_session", "id": "w1", "input": TELL}

        out = tick(ctx, force=True)
        assert out.status == "decided", (out.status, out.error)
        assert out.prompt_path is not None
        prompt = out.prompt_path.read_text()
        late = prompt[prompt.index("=== READINGS THAT MOVE") :]
        w1 = json.loads(late.split("--- sys-sessions.json worker w1\n")[1].splitlines()[0])
        assert w1["news"]["sensor-tests.json"]["result"] == "fail"

        code, _, _ = expect(root, "w1", "ANSWER:fixed", screen=True, timeout_s=90, clock=ctx.clock)
        shot = screenshot(root, "w1", "plain").get("text", "")
        assert code == 0, shot
        got = _sensor(sensor)
        assert got["signal"] == {"result": "pass", "failing": []}, got
        assert got["detail"]["branch"] == "looop/w1"
    finally:
        kill(root, "w1")
