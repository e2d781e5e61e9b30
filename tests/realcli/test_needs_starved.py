"""A real opencode or gemini TUI starved of CPU right when it shows its input box, before its
approval prompt draws, is never told idle: its whole run is stopped (sessions/hold, as a
loaded machine holds a TUI still) while beats look at it every second, then let go on. Before
the idle floor (home/needsinput.IDLE_QUIET_S), the second look at the still box said
`needs-input` and told the human of an idle worker that was about to ask for approval."""

from __future__ import annotations

import json
import time

import pytest

from looop.sessions import hold
from looop.sessions.client import kill, screenshot
from looop.workers.launch import start_worker
from looop.workers.needsinput import Looker
from looop.workers.started import StartRequest
from tests.realcli.harness import answer_first_run_prompts
from tests.realcli.model_server import PROBE_MARK
from tests.realcli.test_needs_input import COMMAND, RigFor, _ask_opencode_first, _health

STARVED_S = 2.4  # three beats a second apart, short of the floor


@pytest.mark.timeout(240)
@pytest.mark.parametrize("cli", ["opencode", "gemini"])
def test_a_tui_starved_at_its_box_before_its_prompt_is_not_told_idle(
    rig_for: RigFor, cli: str
) -> None:
    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    if cli == "opencode":
        _ask_opencode_first(rig)
    ctx, root, wid = rig.ctx, rig.ctx.paths.data, f"s-{cli}"
    cfg = json.loads(ctx.paths.config.read_text())
    cfg["notification"] = 'echo "{{id}}" >> told.txt'  # who was told, a line each
    ctx.paths.config.write_text(json.dumps(cfg))
    rig.server.worker_shell = "touch probed.txt"
    brief = StartRequest(wid, f"{PROBE_MARK} ECHO:n1", command=COMMAND.get(cli))
    start_worker(ctx, ctx.knobs(), brief)
    look, sdir = Looker(), str(root / "sessions" / wid)
    try:
        # its first screen that waits on anyone: the box it draws before the model answers
        deadline, said = time.monotonic() + 90, None
        while said is None and time.monotonic() < deadline:
            text = screenshot(root, wid, "plain").get("text", "")
            said = look.judge(str(root), wid, sdir, text, None) if text else None
            time.sleep(0.05)
        if not str(said).startswith("idle"):
            pytest.skip(f"{cli} showed no idle-looking box before its prompt: {said}")
        _health(rig, wid)  # a beat sees the box
        assert hold.pause(root, wid)
        seen = []
        try:
            for _ in range(round(STARVED_S / 0.8)):
                time.sleep(0.8)  # a beat's cadence at its fastest
                seen.append(_health(rig, wid))
        finally:
            hold.go_on(root, wid)
        assert all(health != "needs-input" for health, _ in seen), seen
        assert all(told == [] for _, told in seen), seen
    finally:
        kill(root, wid)
