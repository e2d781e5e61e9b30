"""Records the needs-input corpus (tests/corpus/needs/): the real claude, codex, pi, opencode
and gemini TUIs as workers against the scripted model server, their plain screen (as the
screenshot API returns it, what the detector reads) kept each time it changed, at several
terminal sizes and through a whole turn: starting, thinking (the server answers late),
asking to run a command (an approval prompt where the CLI has one), running a slow command
with a long output, done at its input box, and a turn that fails (the server answers 500;
`test_record_errors`: it answers 401, which every CLI reports at once, gemini included, which
retries a 500 for minutes); `test_record_long_answers`: the model's answer is long (a table
of 90 rows, then a quoted screen with every CLI's spinner and prompt words, as a worker on
looop itself would print), so the screen is full of output at the idle box.

Not a test: run by hand, `LOOOP_RECORD_NEEDS=1 pytest tests/realcli/record_needs.py`; each
new screen is written unlabelled (tests/corpus/needs/<cli>/<n>.txt) for a human to label in
labels.json before any detector looks at it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from looop.sessions.client import kill, screenshot, send, send_keys
from looop.sessions.state import SessionError
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.corpus.needs.score import last_number
from tests.realcli.harness import Rig, answer_first_run_prompts
from tests.realcli.model_server import AUTH, HTTP_500, PROBE_MARK, Reply
from tests.realcli.test_needs_input import ANSWER, COMMAND, _ask_opencode_first

CORPUS = Path(
    os.environ.get("LOOOP_RECORD_NEEDS_TO")
    or Path(__file__).resolve().parent.parent / "corpus" / "needs"
)
SIZES = ((120, 40), (80, 24), (200, 50))[: int(os.environ.get("LOOOP_RECORD_NEEDS_SIZES") or 3)]
STILL_S = 4.0  # a screen unchanged this long: the CLI waits (answer it, or the run ends)
PATIENCE_S = 12.0  # a screen that keeps changing (a blinking prompt) is answered after this
RUN_S = 150.0

pytestmark = pytest.mark.skipif(
    os.environ.get("LOOOP_RECORD_NEEDS") != "1", reason="records the corpus: by hand only"
)


def _slow(rig: Rig, delay_s: float) -> None:
    """Each model answer comes late, so the CLI's busy screen shows a while."""
    plan = rig.server.plan

    def late(api: str, body: dict[str, Any]) -> Any:
        time.sleep(delay_s)
        return plan(api, body)

    rig.server.plan = late  # type: ignore[method-assign]


# Words the CLIs draw when they work or ask, quoted in an answer: on an idle screen they are
# output, not the CLI's own state.
QUOTED = """The TUI tests read screens such as these:

    ✻ Beaming… (esc to interrupt)
    Do you want to proceed?
    ❯ 1. Yes
    ⠋ Working...
    Allow once   Allow always   Reject
    ⠇ Thinking... (esc to cancel, 2m 16s)

`esc to interrupt` shows while a CLI works; "Would you like to run the command?" asks."""


def _long(word: str) -> str:
    rows = "\n".join(f"| src/mod{i:02d}.py | {40 + i} | ok |" for i in range(90))
    head = f"ANSWER:{word}: I checked 90 files.\n\n| file | lines | status |\n|---|---|---|\n"
    return head + rows + "\n\n" + QUOTED + "\n\nAll 90 files checked."


def _long_answers(rig: Rig) -> None:
    """The parrot's answer (`ANSWER:<word> …`) becomes a long one."""
    plan = rig.server.plan

    def long(api: str, body: dict[str, Any]) -> Any:
        reply = plan(api, body)
        if reply.tool is None and reply.text.startswith("ANSWER:"):
            return Reply(text=_long(reply.text.split()[0].removeprefix("ANSWER:")))
        return reply

    rig.server.plan = long  # type: ignore[method-assign]


def _keep(cli: str, text: str, tag: str) -> None:
    d = CORPUS / cli
    d.mkdir(parents=True, exist_ok=True)
    n = last_number(d) + 1  # thinned screens leave gaps: never reuse a number
    (d / f"{n:03d}.txt").write_text(text)
    (d / f"{n:03d}.how").write_text(tag + "\n")  # how it was recorded; never its label


def _record(rig: Rig, wid: str, size: tuple[int, int], tag: str, failing: bool) -> None:
    ctx, root = rig.ctx, rig.ctx.paths.data
    prompt = f"{PROBE_MARK} ECHO:{wid}"
    req = StartRequest(wid, prompt, command=COMMAND.get(rig.cli), size=size)
    start_worker(ctx, ctx.knobs(), req)
    last, still_since, answered, told = "", time.monotonic(), 0, False
    acted = time.monotonic()
    end = time.monotonic() + RUN_S
    try:
        while time.monotonic() < end:
            try:
                text = str(screenshot(root, wid, "plain").get("text", ""))
            except (SessionError, OSError):  # not up yet, or ended: the run is over
                if time.monotonic() - still_since > STILL_S:
                    break
                time.sleep(0.25)
                continue
            now = time.monotonic()
            if text != last and text.strip():
                _keep(rig.cli, text, f"{tag} t={RUN_S - (end - now):.1f}")
                acted = acted if last else now  # patience counts from the first drawing
                last, still_since = text, now
            elif last and (now - still_since > STILL_S or now - acted > PATIENCE_S):
                if rig.cli in ANSWER and answered < 1 and not failing:
                    send_keys(root, wid, ANSWER[rig.cli])
                    print(f"answered {rig.cli} {wid}", flush=True)
                    answered += 1
                elif not told:  # its turn done: a second message, a second turn
                    send(root, wid, f"ECHO:{wid}b")
                    told = True
                else:
                    break
                still_since = acted = time.monotonic()
            time.sleep(0.25)
    finally:
        kill(root, wid)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("cli", ["claude", "codex", "pi", "opencode", "gemini"])
def test_record(rig_for: Any, cli: str) -> None:
    rig = rig_for(cli)
    if cli != "codex":
        answer_first_run_prompts(rig)
    if cli == "opencode":
        _ask_opencode_first(rig)
    # a command that writes: claude asks before it (a read-only one it runs unasked)
    rig.server.worker_shell = "touch probed.txt; sleep 3; seq 1 120; echo done"
    _slow(rig, 2.0)
    for i, size in enumerate(SIZES):
        _record(rig, f"r{i}", size, f"{cli} {size[0]}x{size[1]} turn", failing=False)
    rig.server.scenario = HTTP_500
    _record(rig, "e0", SIZES[0], f"{cli} {SIZES[0][0]}x{SIZES[0][1]} http500", failing=True)
    assert json.dumps(sorted(p.name for p in (CORPUS / cli).glob("*.txt")))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("cli", ["claude", "codex", "pi", "opencode", "gemini"])
def test_record_errors(rig_for: Any, cli: str) -> None:
    """Error screens: each CLI told its key is refused (401) at two sizes, then a second
    message refused again; what it shows while it fails and at its box after."""
    rig = rig_for(cli)
    if cli != "codex":
        answer_first_run_prompts(rig)
    rig.server.scenario = AUTH
    for i, size in enumerate(SIZES[:2]):
        _record(rig, f"a{i}", size, f"{cli} {size[0]}x{size[1]} auth401", failing=True)
    assert list((CORPUS / cli).glob("*.txt"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("cli", ["claude", "codex", "pi", "opencode", "gemini"])
def test_record_long_answers(rig_for: Any, cli: str) -> None:
    """Long output: each CLI's answer fills its screen, at two sizes, then a second one."""
    rig = rig_for(cli)
    if cli != "codex":
        answer_first_run_prompts(rig)
    _long_answers(rig)
    for i, size in enumerate(SIZES[:2]):
        # codex's first screen is its model chooser: answered, as in a turn
        _record(rig, f"l{i}", size, f"{cli} {size[0]}x{size[1]} long", failing=cli != "codex")
    assert list((CORPUS / cli).glob("*.txt"))
