"""The real claude and pi interactive TUIs as looop workers under the PTY supervisor: their
real screen in a screenshot, a prompt sent and submitted, the scripted answer on screen, and
a clean kill."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from looop.sessions.client import expect, kill, screenshot, send, send_keys
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.realcli.harness import Rig, answer_first_run_prompts

RigFor = Callable[[str], Rig]

# What only the real program prints: its name in the raw session log (pi's banner; claude's
# terminal title, as it repaints only what changes) and a footer that stays on screen, showing
# the preset's flags (the long brief scrolls the rest away).
BANNER = {"claude": ("Claude Code", True), "pi": ("pi v0.73.1", False)}
FOOTER = {"claude": "bypass permissions on", "pi": "claude-opus-4-7"}
# The last screen after a kill: claude leaves its alternate screen and says how to resume;
# pi's transcript stays.
AFTER = {"claude": "Resume this session with", "pi": "(from the scripted model)"}


def _screen(root: Path, sid: str) -> str:
    return str(screenshot(root, sid, "plain", trim=True).get("text", ""))


def _left_in(data: Path) -> list[str]:
    """Processes still running with the data dir as their working directory."""
    left = []
    for p in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            cwd = p.info["cwd"]
        except psutil.Error:
            continue
        if cwd and Path(cwd) == data:
            left.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'] or [])[:80]}")
    return left


def _start(rig: Rig, sid: str) -> None:
    """Start the worker with the preset's worker command; its brief is answered on screen."""
    answer_first_run_prompts(rig)
    ctx, root = rig.ctx, rig.ctx.paths.data
    start_worker(ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42"))
    code, _, _ = expect(root, sid, r"ANSWER:brief42", screen=True, timeout_s=60, clock=ctx.clock)
    assert code == 0, _screen(root, sid)


def _assert_gone(root: Path, sid: str, cli: str) -> None:
    assert not get_session(root, sid).alive
    deadline = time.monotonic() + 10
    while _left_in(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _left_in(root) == []
    # the last screen stays readable after the end; a CLI that the 300 ms grace escalated
    # (a loaded machine slows claude's clean-up) died by SIGKILL before it could print its
    # goodbye, and its status says so
    s = get_session(root, sid)
    if s.exit_code is not None:
        assert AFTER[cli] in _screen(root, sid), _screen(root, sid)
    else:
        assert s.state == "killed", s


@pytest.mark.timeout(150)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_real_tui_runs_as_a_worker(rig_for: RigFor, cli: str) -> None:
    rig = rig_for(cli)
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"w-{cli}"
    _start(rig, sid)
    try:
        shot = _screen(root, sid)
        assert FOOTER[cli] in shot, shot
        banner, raw = BANNER[cli]
        code, _, _ = expect(root, sid, banner, raw=raw, timeout_s=5, clock=ctx.clock)
        assert code == 0
        assert "WORKER CONTRACT" in rig.server.model_calls()[-1].text()

        send(root, sid, "ECHO:second77", newline=False)
        code, _, _ = expect(root, sid, r"ECHO:second77", screen=True, timeout_s=20, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        assert "ANSWER:second77" not in _screen(root, sid)  # typed, not yet submitted
        send_keys(root, sid, ["Enter"])
        code, _, _ = expect(
            root, sid, r"ANSWER:second77", screen=True, timeout_s=60, clock=ctx.clock
        )
        assert code == 0, _screen(root, sid)
        assert any("ECHO:second77" in r.text() for r in rig.server.model_calls())
        assert get_session(root, sid).alive
    finally:
        ended = kill(root, sid)
    # Ended either by the polite signal (its own exit code recorded) or, when the CLI's clean-up
    # outlasts the 300 ms grace (claude writes its resume hint; slower on a loaded machine), by
    # the escalation: then it is recorded as killed, never as a clean exit.
    assert ended.get("killed") is True and ended.get("confirmed") is True, ended
    assert ended.get("escalated") is True or ended.get("exit_code") is not None, ended
    assert ended.get("exit_code") != 0 or not ended.get("escalated"), ended
    _assert_gone(root, sid, cli)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("cli", ["claude", "pi"])
def test_real_tui_driven_with_the_looop_verbs(rig_for: RigFor, cli: str) -> None:
    """`looop shot`, `looop send -n` + `looop key … Enter`, `looop kill`, as a user would."""
    rig = rig_for(cli)
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"v-{cli}"
    _start(rig, sid)
    try:
        shot = rig.looop("shot", sid)
        assert shot.returncode == 0, shot.stderr
        assert "ANSWER:brief42" in shot.stdout and FOOTER[cli] in shot.stdout

        sent = rig.looop("send", "-n", sid, "ECHO:third99")
        assert sent.returncode == 0, sent.stderr
        code, _, _ = expect(root, sid, r"ECHO:third99", screen=True, timeout_s=20, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        keyed = rig.looop("key", sid, "Enter")
        assert keyed.returncode == 0, keyed.stderr
        code, _, _ = expect(
            root, sid, r"ANSWER:third99", screen=True, timeout_s=60, clock=ctx.clock
        )
        assert code == 0, _screen(root, sid)

        killed = rig.looop("kill", sid, "--reason", "test over")
        assert killed.returncode == 0, killed.stderr
        assert f"kill-worker {sid} · test over" in ctx.paths.journal.read_text()
    finally:
        if get_session(root, sid).alive:
            kill(root, sid)
    _assert_gone(root, sid, cli)
