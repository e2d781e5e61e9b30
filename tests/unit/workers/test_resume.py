"""Resumable workers: the record, the templates, and which worker `looop restart` and
`looop up` start again on its conversation — with a scripted agent in real PTY sessions."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import answer, new_ask
from looop.runners.presets import PRESETS
from looop.sessions.client import expect, kill
from looop.sessions.logs import read_log
from looop.sessions.state import get_session
from looop.views import outcomes
from looop.workers.errors import WorkerError
from looop.workers.launch import start_worker
from looop.workers.resume import (
    read_record,
    record_path,
    restart_worker,
    resume_dead,
    resume_worker,
    to_resume,
    valid_id,
)
from looop.workers.started import StartRequest
from looop.workers.startrecord import plan_start
from tests.helpers import clean_env, run_cli, stop_sessions
from tests.unit.test_conversation_finders import BRIEF
from tests.unit.test_conversation_finders import conversation as opencode_conversation
from tests.unit.test_conversation_finders import store as opencode_store

pytestmark = [pytest.mark.timeout(60), pytest.mark.process]  # real processes

UUID_LEN = 36
# The scripted agent: says how it was started and with which conversation, then waits.
WORKER = "echo START {{session_id}}; exec sleep 600 # {{prompt_file}}"
RESUME = "echo RESUMED {{session_id}}; cat {{prompt_file}}; exec sleep 600"


@pytest.fixture
def fleet(ctx: Ctx) -> Iterator[Ctx]:
    cfg = {
        "default": "fake",
        "runners": {
            "fake": {"tick": "true", "worker": WORKER, "resume": RESUME},
            "plain": {"tick": "true", "worker": "exec sleep 600 # {{prompt_file}}"},
        },
    }
    store.write_json(ctx.paths.config, cfg)
    yield ctx
    stop_sessions(ctx.paths.data)


def _start(ctx: Ctx, wid: str, runner: str = "fake", resume: bool = True) -> None:
    start_worker(ctx, ctx.knobs(), StartRequest(wid, "do the thing", runner=runner, resume=resume))
    if runner == "fake":
        code, _, _ = expect(ctx.paths.data, wid, "START ", timeout_s=10, clock=ctx.clock)
        assert code == 0


def _reboot(ctx: Ctx, wid: str) -> None:
    """SIGKILL the supervisor and its agent: no end is recorded."""
    s = get_session(ctx.paths.data, wid)
    assert s.supervisor_pid is not None and s.child_pid is not None
    os.kill(s.supervisor_pid, signal.SIGKILL)
    try:
        os.killpg(s.child_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while get_session(ctx.paths.data, wid).alive:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _log(ctx: Ctx, wid: str) -> str:
    return read_log(ctx.paths.data, wid, 0, False)[0]


# -- templates ----------------------------------------------------------------------------


def test_claude_and_pi_are_given_a_fresh_id_codex_and_opencode_name_their_own() -> None:
    seen = set()
    for cli in ("claude", "pi"):
        line, conv, find = plan_start(PRESETS[cli]["worker"], PRESETS[cli]["resume"])
        assert conv is not None and len(conv) == UUID_LEN and conv in line and find is None
        assert "{{session_id}}" not in line
        seen.add(conv)
    assert len(seen) == 2  # minted fresh each time
    for cli in ("codex", "opencode"):
        line, conv, find = plan_start(PRESETS[cli]["worker"], PRESETS[cli]["resume"])
        assert (line, conv, find) == (PRESETS[cli]["worker"], None, cli)
    assert plan_start("my-agent {{prompt_file}}", None) == ("my-agent {{prompt_file}}", None, None)


@pytest.mark.parametrize("bad", ["$(rm -rf ~)", "a b", "a;b", "`x`", "", "-rf", "x" * 200, "é"])
def test_an_id_with_shell_characters_is_not_an_id(bad: str) -> None:
    assert not valid_id(bad)


# -- the record ---------------------------------------------------------------------------


def test_a_start_records_the_conversation_cwd_sandbox_and_policy(fleet: Ctx) -> None:
    _start(fleet, "w1")
    rec = read_record(fleet, "w1")
    assert rec is not None
    assert rec.conversation is not None and f"START {rec.conversation}" in _log(fleet, "w1")
    assert (rec.policy, rec.cwd, rec.sandbox.on, rec.resume) == (
        "resume",
        str(fleet.paths.rooms / "w1" / "work"),  # a custom command without a repo works in its room
        False,
        RESUME,
    )
    _start(fleet, "w2", resume=False)
    rec2 = read_record(fleet, "w2")
    assert rec2 is not None and rec2.policy == "never"
    assert rec2.conversation != rec.conversation


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda r: "not json{", "unreadable"),
        (lambda r: json.dumps({**r, "conversation": "$(touch /tmp/pwned)"}), "not an id"),
        (lambda r: json.dumps({**r, "id": "other"}), "not a version 1 record"),
        (lambda r: json.dumps({**r, "policy": "always"}), "policy"),
        (lambda r: json.dumps({**r, "sandbox": "maybe"}), "sandbox"),
        (lambda r: json.dumps({**r, "cwd": "relative/dir"}), "absolute"),
        (lambda r: json.dumps({**r, "started": True}), "started"),
        (lambda r: json.dumps({**r, "pad": "x" * 70000}), "too large"),
    ],
)
def test_a_bad_record_is_refused_in_one_line_and_nothing_changes(
    fleet: Ctx, edit: object, why: str
) -> None:
    _start(fleet, "w1")
    path = record_path(fleet, "w1")
    raw = json.loads(path.read_text())
    path.write_text(edit(raw))  # type: ignore[operator]
    before = get_session(fleet.paths.data, "w1")
    with pytest.raises(WorkerError) as e:
        resume_worker(fleet, fleet.knobs(), "w1")
    msg = str(e.value)
    assert why in msg and "\n" not in msg and "looop worker start w1" in msg
    after = get_session(fleet.paths.data, "w1")
    assert after.alive and after.child_pid == before.child_pid  # the live worker untouched
    assert not Path("/tmp/pwned").exists()


def test_a_fifo_in_place_of_the_record_never_blocks(fleet: Ctx) -> None:
    path = record_path(fleet, "w9")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    with pytest.raises(WorkerError, match="unreadable"):
        read_record(fleet, "w9")


# -- restart and up -----------------------------------------------------------------------


def test_a_dead_worker_resumes_its_conversation_and_hears_of_its_stranded_ask(
    fleet: Ctx,
) -> None:
    _start(fleet, "w1")
    rec = read_record(fleet, "w1")
    assert rec is not None and rec.conversation is not None
    ask = new_ask(fleet.paths.asks, fleet.paths.answers, "w1", "ship?", None, [], 0)
    _reboot(fleet, "w1")
    assert to_resume(fleet) == ["w1"]
    assert resume_dead(fleet, fleet.knobs()) == [("w1", None)]
    code, _, _ = expect(fleet.paths.data, "w1", "--wait", timeout_s=10, clock=fleet.clock)
    assert code == 0
    log = _log(fleet, "w1")
    assert f"RESUMED {rec.conversation}" in log
    assert f"ask w1 --wait {ask['id']}" in log
    assert to_resume(fleet) == []  # alive again: a second `up` leaves it be
    assert read_record(fleet, "w1") == rec


def test_up_leaves_workers_that_ended_or_did_not_opt_in(fleet: Ctx) -> None:
    _start(fleet, "exited")
    _start(fleet, "killed")
    _start(fleet, "optout", resume=False)
    _start(fleet, "died")
    kill(fleet.paths.data, "killed")
    _reboot(fleet, "optout")
    _reboot(fleet, "died")
    s = get_session(fleet.paths.data, "exited")
    os.kill(s.child_pid or 0, signal.SIGTERM)  # the agent ends on its own
    code, _, _ = expect(fleet.paths.data, "exited", "nothing", timeout_s=10, clock=fleet.clock)
    assert code == 1  # the session ended
    assert to_resume(fleet) == ["died"]


def test_up_leaves_a_stalled_worker_until_a_human_clears_it(fleet: Ctx) -> None:
    _start(fleet, "w1")
    _reboot(fleet, "w1")
    data = str(fleet.paths.data)
    rec = {"v": 1, "id": "w1", "gen": "g", "outcome": "stalled", "stalled": True, "streak": 3}
    outcomes.write_record(data, rec)  # it failed the same way three times in a row
    assert to_resume(fleet) == []
    assert outcomes.unstall(data, "w1")
    assert to_resume(fleet) == ["w1"]


def test_restart_of_a_live_resumable_worker_resumes_it(fleet: Ctx, capsys: object) -> None:
    _start(fleet, "w1")
    rec = read_record(fleet, "w1")
    assert rec is not None
    done = restart_worker(fleet, fleet.knobs(), "w1")
    assert done == {"resumed": "w1", "conversation": rec.conversation, "runner": "fake"}
    code, _, _ = expect(fleet.paths.data, "w1", "RESUMED", timeout_s=10, clock=fleet.clock)
    assert code == 0


def test_a_runner_without_a_resume_template_is_said_plainly(fleet: Ctx) -> None:
    _start(fleet, "p1", runner="plain")
    assert restart_worker(fleet, fleet.knobs(), "p1") is None  # live: the in-place restart
    with pytest.raises(WorkerError, match="runner 'plain' has no resume template"):
        resume_worker(fleet, fleet.knobs(), "p1")
    _reboot(fleet, "p1")
    with pytest.raises(WorkerError, match="its runner has no resume template"):
        restart_worker(fleet, fleet.knobs(), "p1")


def test_unknown_worker_and_no_recorded_conversation(fleet: Ctx) -> None:
    with pytest.raises(WorkerError, match="no resume record"):
        resume_worker(fleet, fleet.knobs(), "nosuch")
    _start(fleet, "w1")
    path = record_path(fleet, "w1")
    path.write_text(json.dumps({**json.loads(path.read_text()), "conversation": None}))
    with pytest.raises(WorkerError, match="no conversation id was recorded"):
        resume_worker(fleet, fleet.knobs(), "w1")
    assert get_session(fleet.paths.data, "w1").alive


def test_the_restart_verb_and_ask_wait(fleet: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    _start(fleet, "w1")
    rec = read_record(fleet, "w1")
    assert rec is not None
    _reboot(fleet, "w1")
    env = clean_env(fleet.paths.data.parent, fleet.paths.data)
    code, out, err = run_cli(capsys, "restart", "w1", env=env)
    assert code == 0, err
    assert out.strip() == f"resumed w1 on conversation {rec.conversation}"
    code, out, err = run_cli(capsys, "restart", "nosuch", env=env)
    assert code != 0 and "no worker or session" in err and len(err.strip().splitlines()) == 1

    ask = new_ask(fleet.paths.asks, fleet.paths.answers, "w1", "ship?", None, [], 0)
    answer(fleet.paths.asks, fleet.paths.answers, ask["id"], "yes", 0)
    code, out, err = run_cli(capsys, "ask", "w1", "--wait", ask["id"], env=env)
    assert (code, out) == (0, "yes\n"), err
    code, out, err = run_cli(capsys, "ask", "w2", "--wait", ask["id"], env=env)
    assert code != 0 and "no ask" in err  # another worker's ask is not its to wait on
    code, out, err = run_cli(capsys, "ask", "w1", "--wait", ask["id"], "-p", "x", env=env)
    assert code != 0 and "one of them" in err


# a stand-in for opencode 1.18.33's TUI: says how it was started, then waits
OPENCODE = """#!/bin/sh
case "$1" in
  --prompt) echo STARTED; exec sleep 600 ;;
  --mini) echo "RESUMED $3"; printf '%s\\n' "$5"; exec sleep 600 ;;
  *) exit 2 ;;
esac
"""


def test_a_resume_finds_opencode_id_once_then_keeps_it(fleet: Ctx, tmp_path: Path) -> None:
    """With opencode's own preset lines (the program scripted): the id opencode named is
    looked up in its store at the first resume and recorded; the next resume uses the record
    even when opencode no longer holds it."""
    from dataclasses import replace

    prog = tmp_path / "bin" / "opencode"
    prog.parent.mkdir()
    prog.write_text(OPENCODE)
    prog.chmod(0o755)
    ctx = replace(fleet, env={**fleet.env, "PATH": f"{prog.parent}:/usr/bin:/bin"})
    store.write_json(
        ctx.paths.config, {"default": "opencode", "runners": {"opencode": PRESETS["opencode"]}}
    )
    start_worker(ctx, ctx.knobs(), StartRequest("w1", "do the thing", resume=True))
    code, _, _ = expect(ctx.paths.data, "w1", "STARTED", timeout_s=10, clock=ctx.clock)
    assert code == 0
    rec = read_record(ctx, "w1")
    assert rec is not None and rec.find == "opencode" and rec.conversation is None
    made = int((rec.started + 1) * 1000)
    con = opencode_store(Path(ctx.env["HOME"]))
    opencode_conversation(con, "ses_tick", made, rec.cwd, [("user", "=== CONSTITUTION a tick")])
    opencode_conversation(con, "ses_mine", made + 5, rec.cwd, [("user", BRIEF)])
    con.close()
    for _ in range(2):
        _reboot(ctx, "w1")
        resume_worker(ctx, ctx.knobs(), "w1")
        code, _, _ = expect(ctx.paths.data, "w1", "RESUMED ses_mine", timeout_s=10, clock=ctx.clock)
        assert code == 0, _log(ctx, "w1")
        rec = read_record(ctx, "w1")
        assert rec is not None and rec.conversation == "ses_mine"
        for f in Path(ctx.env["HOME"]).glob(".local/share/opencode/opencode.db*"):
            f.unlink()  # opencode forgets: the record remembers
    # the note came as the prompt (printed after the RESUMED line, maybe a moment later)
    code, _, _ = expect(
        ctx.paths.data, "w1", "looop started you again", timeout_s=10, clock=ctx.clock
    )
    assert code == 0, _log(ctx, "w1")


def test_start_worker_takes_resume_as_a_boolean() -> None:
    from looop.act.decision import DecisionError
    from looop.act.parse import decision_from_obj

    obj = {"action": "start_worker", "id": "w1", "prompt": "go", "resume": True}
    d = decision_from_obj(obj)
    assert getattr(d.action, "resume", None) is True
    with pytest.raises(DecisionError, match="'resume' must be true or false"):
        decision_from_obj({**obj, "resume": "yes"})
