"""Resumable workers with the real codex and opencode TUIs, which name their conversation
themselves (looop cannot give them one): a worker does one turn against the scripted model,
the machine "reboots" (its supervisor, the agent's process group and anything else the CLI
left running — codex's app-server daemon — are SIGKILLed), then `looop restart ID` or
`looop up` finds the id in the CLI's own storage and starts it again on that conversation:
the resumed CLI's next request to the model carries the earlier turns, and the worker's
stranded ask is LIVE again and named in what the resumed agent is told first."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from looop.human.mailbox import new_ask
from looop.loop.asks import tag
from looop.sessions.client import expect, kill
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.resume import read_record
from looop.workers.started import StartRequest
from tests.realcli.harness import Rig, answer_first_run_prompts
from tests.realcli.meter import Meter, worker_rows
from tests.realcli.test_resume import NOTE, _await, _reboot, _screen

RigFor = Callable[[str], Rig]


def _left_behind(home: Path) -> list[psutil.Process]:
    """Processes of this test's CLI still running outside the session: codex 0.169's TUI
    starts a shared app-server daemon (its own session, binary under $CODEX_HOME)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(home) in a for a in p.info["cmdline"] or ()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def _kill_left_behind(home: Path) -> None:
    procs = _left_behind(home)
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=10)


# opencode 1.18.33's --mini replay waits 2 s, hard-coded, for its highlighter; on a loaded
# machine it gives up and the CLI exits ("Unexpected error")
_REPLAY_CRASH = "ScrollbackSurface.settle timed out"


def _replay_crashed(root: Path, sid: str) -> bool:
    return not get_session(root, sid).alive and _REPLAY_CRASH in _screen(root, sid)


def _restarted_after_crash(rig: Rig, meter: Meter, sid: str) -> float | None:
    """After opencode's replay gave up (its own bug under load, also once its resumed turn is
    sent): restarted as a user would, its own resumed turn metered (returned); None when the
    CLI still runs."""
    if not _replay_crashed(rig.ctx.paths.data, sid):
        return None
    n = meter.turns()
    again = rig.looop("restart", sid)
    assert again.returncode == 0, again.stderr
    return meter.settles(n, "the restarted opencode's turn metered")


def _opencode(rig: Rig, *args: str) -> str:
    done = subprocess.run(
        ["opencode", *args],
        cwd=rig.ctx.paths.data,
        env=rig.ctx.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _stored(rig: Rig, sql: str, *args: str) -> list[tuple[object, ...]]:
    """Rows of opencode's own database, read-only: a poll that costs nothing, where each of
    its `session list` or `export` costs ~2.5 s of CPU. The CLI itself is asked once after."""
    db = rig.home / ".local" / "share" / "opencode" / "opencode.db"
    if not db.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return c.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


def _holds(rig: Rig, conv: str, text: str) -> bool:
    """Whether the CLI's own record of conversation `conv` holds `text`."""
    if rig.cli == "codex":
        # codex writes an item's event before its response_item, and a resume replays only
        # response_items: a kill between the two loses the turn
        files = (rig.home / ".codex" / "sessions").glob(f"*/*/*/rollout-*{conv}.jsonl")
        return any(
            text in line and '"type":"response_item"' in line
            for p in files
            for line in p.read_text(errors="replace").splitlines()
        )
    parts = "select 1 from part where session_id = ? and instr(data, ?) > 0"
    return bool(_stored(rig, parts, conv, text)) and text in _opencode(rig, "export", conv)


def _named(rig: Rig) -> list[str]:
    """The conversation ids the CLI itself lists (proof the found id is the real one)."""
    if rig.cli == "codex":
        names = (rig.home / ".codex" / "sessions").glob("*/*/*/rollout-*.jsonl")
        return sorted(p.stem[-36:] for p in names)
    if not _stored(rig, "select id from session"):
        return []
    return sorted(
        row["id"] for row in json.loads(_opencode(rig, "session", "list", "--format", "json"))
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("cli", "verb", "reboot"),
    [
        ("codex", "restart", True),
        # only the supervisor and the agent died: codex's daemon still holds the conversation
        ("codex", "up", False),
        # `up` finds the id as `restart` does (resume.conversation), walked above with codex;
        # under `up` opencode is also the pulse's runner: ~8 s of CPU a beat, beats for minutes
        ("opencode", "restart", True),
    ],
)
def test_resumed_worker_sends_its_earlier_turns(
    rig_for: RigFor, cli: str, verb: str, reboot: bool
) -> None:
    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    ctx, root, sid = rig.ctx, rig.ctx.paths.data, f"r-{cli}"
    start_worker(ctx, ctx.knobs(), StartRequest(sid, "Greet the fleet. ECHO:brief42", resume=True))
    # opencode's spend is metered here, across the same resume (test_spend walks the others)
    meter = Meter(rig, sid) if cli == "opencode" else None
    try:
        code, _, _ = expect(root, sid, "ANSWER:brief42", screen=True, timeout_s=90, clock=ctx.clock)
        assert code == 0, _screen(root, sid)
        rec = read_record(ctx, sid)
        # the CLI names its conversation itself: nothing is known at the start
        assert rec is not None and rec.conversation is None and rec.find == cli
        assert rec.policy == "resume"
        named: list[str] = []

        def saved() -> bool:  # kept: opencode's listing costs ~2.5 s of CPU
            named[:] = _named(rig)
            return len(named) == 1

        _await(saved, 30, f"{cli} to save its conversation")
        (conv,) = named
        # the screen shows the answer before the CLI stores it: a reboot in between would
        # lose it for any resume, so the machine "reboots" once it is kept
        _await(lambda: _holds(rig, conv, "ANSWER:brief42"), 30, f"{cli} to store its answer")
        # metered once it is known (a tick's decider, opencode too, makes conversations)
        first = meter.settles(0, "opencode's first run metered") if meter else 0.0
        n1 = meter.turns() if meter else 0
        ask = new_ask(ctx.paths.asks, ctx.paths.answers, sid, "ship it?", None, [], time.time())
        _reboot(root, sid)
        if reboot:
            _kill_left_behind(rig.home)  # a reboot ends the CLI's daemons too
        assert tag(ctx, ask) == "STRANDED"
        before = len(rig.server.model_calls())

        if verb == "restart":
            done = rig.looop("restart", sid)
            assert done.returncode == 0, done.stderr
            assert f"resumed {sid} on conversation {conv}" in done.stdout, done.stdout
        else:
            done = rig.looop("up")
            assert done.returncode == 0, done.stderr
            assert f"resumed worker {sid}" in done.stdout, done.stdout
        assert get_session(root, sid).alive
        assert tag(ctx, ask) == "LIVE"
        found = read_record(ctx, sid)
        assert found is not None and found.conversation == conv  # found once, then recorded

        # the resumed turn, not a side request on the same note (codex names its thread in a
        # request of its own that carries only the new message): the one with the brief
        def resumed_turns() -> list[str]:
            texts = [c.text() for c in rig.server.model_calls()[before:]]
            return [t for t in texts if NOTE in t and "ECHO:brief42" in t]

        try:
            _await(
                lambda: bool(resumed_turns() or _replay_crashed(root, sid)),
                120,
                f"the resumed {cli} to send its earlier turns",
            )
            if _replay_crashed(root, sid):  # opencode's own bug under load: restart as a user would
                again = rig.looop("restart", sid)
                assert again.returncode == 0, again.stderr
                _await(lambda: bool(resumed_turns()), 120, f"the resumed {cli} (again)")
        except AssertionError as e:
            notes = [c.text()[-1500:] for c in rig.server.model_calls()[before:]]
            raise AssertionError(
                f"{e}; its calls: {notes}; its screen:\n{_screen(root, sid)}"
            ) from None
        text = resumed_turns()[0]
        # the earlier turns ride along: the brief it was given and what the model answered
        assert "ECHO:brief42" in text and "ANSWER:brief42" in text, text[-3000:]
        assert "WORKER CONTRACT" in text
        assert ask["id"] in text and "--wait" in text
        # the resumed CLI continued that conversation: its own record of it holds the note
        # (and `looop up`'s pulse may have added tick conversations beside it). The CLI's
        # export of `conv` holding it is also the proof that the CLI still lists `conv`: no
        # second listing (opencode's costs ~2.5 s of CPU)
        _await(lambda: _holds(rig, conv, NOTE), 30, f"{cli} to save the note under {conv}")
        if meter is not None:  # the resumed run adds only itself, and so does a later turn
            mid = meter.settles(n1, "the resumed opencode's first turn metered")
            assert first > 0 and mid > first
            rows = worker_rows(rig, sid)
            assert rows and all(r["runner"] == rig.ctx.config().default for r in rows)
            mid = _restarted_after_crash(rig, meter, sid) or mid
            try:
                meter.another_turn(mid)
            except AssertionError:
                if (later := _restarted_after_crash(rig, meter, sid)) is None:
                    raise
                meter.another_turn(later)
    finally:
        if verb == "up":
            rig.looop("down", "--keep-workers")
        if get_session(root, sid).alive:
            kill(root, sid)
        _kill_left_behind(rig.home)
