"""Resumable workers with the real claude, pi and gemini TUIs: a worker does one turn against the
scripted model, its supervisor and agent are SIGKILLed (what a reboot does to them), then
`looop restart ID` or `looop up` starts it again on the same conversation: the resumed CLI's
next request to the model carries the earlier turns, and the worker's stranded ask is LIVE
again and named in what the resumed agent is told first."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.human.mailbox import new_ask
from looop.loop.asks import tag
from looop.runners import gemini
from looop.sessions.client import expect, kill, screenshot
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.resume import read_record
from looop.workers.started import StartRequest
from tests.realcli.harness import Rig, answer_first_run_prompts

RigFor = Callable[[str], Rig]
NOTE = "looop started you again on this same conversation"


def _screen(root: Path, sid: str) -> str:
    return str(screenshot(root, sid, "plain", trim=True).get("text", ""))


def _transcript(rig: Rig, conv: str) -> Path | None:
    """The CLI's own file for conversation `conv` (proof the recorded id is the real one)."""
    if rig.cli == "pi":
        p = rig.home / ".pi" / "agent" / "sessions" / "looop" / f"{conv}.jsonl"
        return p if p.is_file() else None
    if rig.cli == "gemini":
        got = gemini.session_file(str(rig.home), conv)
        return Path(got) if got else None
    found = sorted((rig.home / ".claude" / "projects").glob(f"*/{conv}.jsonl"))
    return found[0] if found else None


def _await(cond: Callable[[], bool], secs: float, what: str) -> None:
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _reboot(root: Path, sid: str) -> None:
    """SIGKILL the supervisor and the agent's process group: nothing records an end."""
    s = get_session(root, sid)
    assert s.supervisor_pid is not None and s.child_pid is not None
    os.kill(s.supervisor_pid, signal.SIGKILL)
    try:
        os.killpg(s.child_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _await(lambda: not get_session(root, sid).alive, 10, "the session to die")

    def gone() -> bool:
        try:
            os.kill(s.child_pid or 0, 0)
        except ProcessLookupError:
            return True
        return False

    _await(gone, 10, "the agent to die")
    assert get_session(root, sid).supervisor_died


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("cli", "verb"),
    [
        ("claude", "restart"),
        ("pi", "up"),
        # not gemini: 0.61 sends a resumed TUI's --prompt-interactive before its async history
        # load (useSessionResume vs the initial-prompt effect), so the first resumed request
        # lacks the earlier turns on some runs and not others — a race of its own, said in the
        # manual, that no assertion here could hold either way
    ],
)
def test_resumed_worker_sends_its_earlier_turns(rig_for: RigFor, cli: str, verb: str) -> None:
    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"r-{cli}"
    start_worker(ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42", resume=True))
    try:
        code, _, _ = expect(root, sid, "ANSWER:brief42", screen=True, timeout_s=60, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        rec = read_record(ctx, sid)
        assert rec is not None and rec.conversation is not None and rec.policy == "resume"
        conv = rec.conversation

        # the CLI keeps its conversation under the id looop gave it, answer included
        def saved() -> bool:
            t = _transcript(rig, conv)
            return t is not None and "ANSWER:brief42" in t.read_text(errors="replace")

        _await(saved, 30, f"{cli} to save the turn under {conv}")
        # the worker asked a human just before the machine went down
        ask = new_ask(ctx.paths.asks, ctx.paths.answers, sid, "ship it?", None, [], time.time())
        _reboot(root, sid)
        assert tag(ctx, ask) == "STRANDED"
        before = len(rig.server.model_calls())

        if verb == "restart":
            done = rig.looop("restart", sid)
            assert done.returncode == 0, done.stderr
            assert f"resumed {sid} on conversation {conv}" in done.stdout
        else:
            done = rig.looop("up")
            assert done.returncode == 0, done.stderr
            assert f"resumed worker {sid}" in done.stdout, done.stdout
        assert get_session(root, sid).alive
        assert tag(ctx, ask) == "LIVE"

        # the resumed turn, not a side request a CLI makes on the same note (a title, say):
        # the one that carries the brief
        def resumed_turns() -> list[str]:
            texts = [c.text() for c in rig.server.model_calls()[before:]]
            return [t for t in texts if NOTE in t and "ECHO:brief42" in t]

        _await(lambda: bool(resumed_turns()), 90, f"the resumed {cli} to send its earlier turns")
        text = resumed_turns()[0]
        # the earlier turns ride along: the brief it was given and what the model answered
        assert "ECHO:brief42" in text and "ANSWER:brief42" in text
        assert "WORKER CONTRACT" in text
        assert ask["id"] in text and "--wait" in text
        assert read_record(ctx, sid) == rec  # the same conversation, recorded once
    finally:
        if verb == "up":
            rig.looop("down", "--keep-workers")
        if get_session(root, sid).alive:
            kill(root, sid)
