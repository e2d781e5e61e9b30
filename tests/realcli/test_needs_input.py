"""The real claude, pi, codex, opencode and gemini TUIs as workers: at claude's, opencode's
and gemini's approval prompt, at codex's model chooser and at each one's idle input box the
sessions probe says `needs-input`, the `notification` hook runs once, the next beats do not
run it again, and answering the prompt takes the worker out of the state.

codex 0.169 has no approval prompt reachable offline: `--ask-for-approval` takes only
on-request (the model must ask for escalation itself) or never, so its waiting screens here
are the chooser it shows at start and its idle box."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from looop.sense import sense
from looop.sessions.client import expect, kill, screenshot, send_keys
from looop.workers import needsinput
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.realcli.harness import Rig, answer_first_run_prompts
from tests.realcli.model_server import PROBE_MARK

RigFor = Callable[[str], Rig]
# claude without the preset's bypass flag, so its own permission prompt shows
COMMAND = {
    "claude": 'claude --permission-mode default --model opus "$(cat {{prompt_file}})"',
    # gemini without the preset's --yolo: it asks before running a shell command
    "gemini": "gemini --skip-trust --model gemini-2.5-pro "
    '--prompt-interactive "$(cat {{prompt_file}})"',
}
# what answers the first waiting screen (an approval, codex's chooser: `2. Use existing model`)
ANSWER = {
    "claude": ["Enter"],
    "codex": ["Down", "Enter"],
    "opencode": ["Enter"],
    "gemini": ["Enter"],
}
FIRST = {
    "claude": "approval: Do you want",
    "codex": "approval: enter/esc confirm",
    "opencode": "approval: ┃ △ Permission required",
    "gemini": "approval: │ Allow execution of",
}


def _ask_opencode_first(rig: Rig) -> None:
    """opencode runs shell commands unasked by default: its config makes it ask."""
    path = rig.home / ".config" / "opencode" / "opencode.json"
    conf = json.loads(path.read_text())
    conf["permission"] = {"bash": "ask"}
    path.write_text(json.dumps(conf, indent=2) + "\n")


def _said(rig: Rig, wid: str) -> str:
    snap = json.loads((rig.ctx.paths.snapshots / "sys-sessions.json").read_text())
    return str(snap["detail"]["workers"][wid].get("needs_input"))


def _health(rig: Rig, wid: str) -> tuple[str, list[str]]:
    """One beat's sensing and telling, as the pulse does it; the health and who was told."""
    ctx = rig.ctx
    cfg = ctx.config()
    sense(ctx, ctx.knobs(cfg), custom=needsinput.custom_patterns(cfg.runners))
    told = ctx.paths.data / "told.txt"

    def lines() -> list[str]:
        return told.read_text().split() if told.exists() else []

    want = len(lines()) + needsinput.tell(ctx, cfg)
    snap = json.loads((ctx.paths.snapshots / "sys-sessions.json").read_text())
    health = next(e["health"] for e in snap["signal"] if e["id"] == wid)
    deadline = time.monotonic() + 5  # the hook runs in the background: wait for its line
    while len(lines()) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    return health, lines()


def _until(rig: Rig, wid: str, want: str, timeout_s: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        health, told = _health(rig, wid)
        if health == want or time.monotonic() > deadline:
            shot = screenshot(rig.ctx.paths.data, wid, "plain").get("text", "")
            assert health == want, f"{health}\n{shot}"
            return told
        # a beat's cadence at the fastest (1 s): an idle box counts once a look 3 s later
        # finds nothing printed since, and a loaded machine can hold a TUI's spinner still for 0.3 s
        time.sleep(1.0)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("cli", ["claude", "pi", "codex", "opencode", "gemini"])
def test_a_real_tui_waiting_for_a_human_is_needs_input_told_once(rig_for: RigFor, cli: str) -> None:
    rig = rig_for(cli)
    if cli != "codex":  # codex's first-run model chooser is its waiting screen here
        answer_first_run_prompts(rig)
    if cli == "opencode":
        _ask_opencode_first(rig)
    ctx, root, wid = rig.ctx, rig.ctx.paths.data, f"n-{cli}"
    cfg = json.loads(ctx.paths.config.read_text())
    cfg["notification"] = 'echo "{{id}}" >> told.txt'
    ctx.paths.config.write_text(json.dumps(cfg))
    rig.server.worker_shell = "touch probed.txt"
    start_worker(
        ctx, ctx.knobs(), StartRequest(wid, f"{PROBE_MARK} ECHO:n1", command=COMMAND.get(cli))
    )
    try:
        if cli in ANSWER:  # its approval prompt (codex: its chooser) first
            told = _until(rig, wid, "needs-input", 120)
            assert told == [wid] and _said(rig, wid).startswith(FIRST[cli]), told
            for _ in range(3):  # its prompt redraws: never told again
                time.sleep(0.7)
                assert _health(rig, wid) == ("needs-input", [wid])
            send_keys(root, wid, ANSWER[cli])  # answer it: yes / the existing model
        code, _, _ = expect(root, wid, r"ANSWER:n1", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0
        assert (root / "probed.txt").exists()
        # its turn done, at its idle input box: needs-input (again after a prompt: a new entry)
        told = _until(rig, wid, "needs-input")
        assert _said(rig, wid).startswith("idle: "), _said(rig, wid)
        assert told == [wid] * (2 if cli in ANSWER else 1)
        assert _health(rig, wid) == ("needs-input", told)  # the next beat: no second word
    finally:
        kill(root, wid)
    assert _health(rig, wid)[0] == "dead"
