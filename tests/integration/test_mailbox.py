"""The ask/answer mailbox across processes, and how the decider sees pending asks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sense.probes import probe_sessions
from looop.sessions.client import expect, kill, wait
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import outside_env, runner_calls, said, stop_sessions, wait_until, wire

pytestmark = pytest.mark.timeout(90)


def _env(ctx: Ctx, **extra: str) -> dict[str, str]:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_ASK_POLL_MS="20", **extra)
    return env


def _looop(ctx: Ctx, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=_env(ctx, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _await(pred: Callable[[], object], secs: float = 20) -> None:
    wait_until(pred, secs)  # the ask is another process: its file is the only signal


def test_ask_blocks_until_answered_and_prints_only_the_answer(ctx: Ctx) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w1", "--prompt", "Ship v2?", "--options", "yes,no"],
        env=_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _await(lambda: (ctx.paths.asks / "w1-1.json").exists())
        r = _looop(ctx, "asks", "--json")
        [row] = __import__("json").loads(r.stdout)
        assert row["id"] == "w1-1" and row["options"] == ["yes", "no"]
        assert row["status"] == "STRANDED"  # no live session w1 here
        assert _looop(ctx, "answer", "w1-1", "Yes").returncode == 0
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and out == "yes\n"
    assert "waiting for an answer" in err
    assert not (ctx.paths.asks / "w1-1.json").exists()  # archived
    assert (ctx.paths.asks / "archive" / "w1-1.json").exists()
    # the human's answer is an event (the journal holds moves), as the web's and watch's are
    assert "user (cli): answered w1-1: Yes" in said(ctx.paths.data)
    assert not ctx.paths.journal.exists()  # no move was made
    r = _looop(ctx, "answer", "w1-1", "again")
    assert r.returncode == 1 and "no pending ask" in r.stderr


def test_reanswer_needs_force_and_ids_count_up(ctx: Ctx) -> None:
    from looop.human.mailbox import answer, new_ask

    a1 = new_ask(ctx.paths.asks, ctx.paths.answers, "w", "q1", None, [], 1.0)
    a2 = new_ask(ctx.paths.asks, ctx.paths.answers, "w", "q2", None, [], 2.0)
    assert (a1["id"], a2["id"]) == ("w-1", "w-2")
    answer(ctx.paths.asks, ctx.paths.answers, "w-1", "first", 3.0)
    r = _looop(ctx, "answer", "w-1", "second")
    assert r.returncode == 1 and "--force" in r.stderr and r.stderr.count("\n") == 1
    assert _looop(ctx, "answer", "w-1", "second", "--force").returncode == 0


def test_vanished_ask_and_timeout_fail_loudly(ctx: Ctx) -> None:
    r = _looop(ctx, "ask", "w2", "--prompt", "anyone?", LOOOP_ASK_TIMEOUT_S="0.3")
    assert r.returncode == 124 and r.stdout == "" and "no answer" in r.stderr
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w3", "--prompt", "q"],
        env=_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _await(lambda: (ctx.paths.asks / "w3-1.json").exists())
        (ctx.paths.asks / "w3-1.json").unlink()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1 and out == "" and "disappeared" in err
    r = _looop(ctx, "ask", "--prompt", "who am I?")
    assert r.returncode == 1 and "LOOOP_SESSION_ID" in r.stderr


def test_an_ask_whose_answer_is_corrupt_keeps_waiting_until_forced(ctx: Ctx) -> None:
    """A broken answers/<id>.json is no answer: the asking worker says so once and waits on;
    the human's `answer --force` replaces it and the worker gets that answer."""
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w4", "--prompt", "q"],
        env=_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        assert "waiting for an answer to w4-1" in p.stderr.readline()
        ctx.paths.answers.mkdir(parents=True, exist_ok=True)
        (ctx.paths.answers / "w4-1.json").write_bytes(b'{"answer": "ye')  # cut mid-write
        said = p.stderr.readline()  # the ask's own word that it read the file and waits on
        assert "w4-1" in said and "unreadable: still waiting" in said, said
        assert p.poll() is None  # not failed: still waiting
        r = _looop(ctx, "asks", "--json")
        assert [row["id"] for row in __import__("json").loads(r.stdout)] == ["w4-1"]
        assert _looop(ctx, "answer", "w4-1", "repaired", "--force").returncode == 0
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and out == "repaired\n", err
    assert "unreadable" not in err  # said once


def test_worker_asking_is_live_then_stranded_and_wakes_the_loop(ctx: Ctx) -> None:
    looop = f"{sys.executable} -m looop"
    wire(ctx, [{"decision": {"action": "noop"}}] * 4)
    try:
        start_worker(
            ctx,
            ctx.knobs(),
            StartRequest(
                "asker",
                "x",
                command=f"a=$({looop} ask asker --prompt 'Merge PR 7?'); echo got:$a "
                "# {{prompt_file}}",
            ),
        )
        _await(lambda: (ctx.paths.asks / "asker-1.json").exists())
        rows = {e["id"]: e for e in probe_sessions(ctx)["signal"]}
        assert rows["asker"]["health"] == "waiting-ask"
        out = tick(ctx)
        prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
        assert (
            "=== PENDING ASKS (waiting on the human — not yours to answer) ===" in prompt
            and "asker-1 [LIVE]" in prompt
        )
        calls = 1
        kill(ctx.paths.data, "asker")  # killed while asking
        out = tick(ctx)  # the fleet changed: decide again, now STRANDED
        calls += 1
        prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
        assert "asker-1 [STRANDED]" in prompt
        assert runner_calls(ctx.paths.data.parent / "script.json") == calls
    finally:
        stop_sessions(ctx.paths.data)


def test_answer_reaches_the_waiting_worker(ctx: Ctx) -> None:
    looop = f"{sys.executable} -m looop"
    wire(ctx, [])
    start_worker(
        ctx,
        ctx.knobs(),
        StartRequest(
            "w5",
            "x",
            command=f"a=$({looop} ask w5 --prompt 'color?'); echo got:$a # {{{{prompt_file}}}}",
        ),
    )
    try:
        _await(lambda: (ctx.paths.asks / "w5-1.json").exists())
        assert _looop(ctx, "answer", "w5-1", "blue").returncode == 0
        code, _, _ = expect(ctx.paths.data, "w5", "got:blue", timeout_s=20, clock=ctx.clock)
        assert code == 0
        assert wait(ctx.paths.data, "w5", 20, ctx.clock) == 0
    finally:
        stop_sessions(ctx.paths.data)


def test_tells_are_delivered_at_most_once(ctx: Ctx) -> None:
    from looop.human.tellbox import new_tell, take_tells

    wire(ctx, [], worker="sleep 300; : {{prompt_file}}")
    start_worker(ctx, ctx.knobs(), StartRequest("t1", "x"))
    try:
        r = _looop(ctx, "tell", "t1", "use", "the", "staging", "db")
        assert r.returncode == 0 and "t1-1" in r.stdout
        assert _looop(ctx, "tell", "t1", "then run the tests").returncode == 0
        r = _looop(ctx, "told", "t1")
        assert r.stdout == "use the staging db\nthen run the tests\n"
        assert _looop(ctx, "told", "t1").stdout == ""  # already delivered
        for i in range(40):  # racing readers: each message reaches exactly one of them
            new_tell(ctx.paths.tells, "t1", f"m{i}", 1.0)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "looop", "told", "t1"],
                env=_env(ctx),
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        got = [line for p in procs for line in p.communicate(timeout=60)[0].splitlines()]
        assert sorted(got) == sorted(f"m{i}" for i in range(40))
        assert take_tells(ctx.paths.tells, "t1") == []
        r = _looop(ctx, "tell", "ghost", "hello")
        assert r.returncode == 1 and "not running" in r.stderr
    finally:
        stop_sessions(ctx.paths.data)
    r = _looop(ctx, "tell", "t1", "too late")
    assert r.returncode == 1 and "not running" in r.stderr


def test_queued_tells_ride_along_with_an_answer(ctx: Ctx) -> None:
    from looop.human.tellbox import new_tell

    new_tell(ctx.paths.tells, "w9", "also update the changelog", 1.0)
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w9", "--prompt", "tag it?"],
        env=_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _await(lambda: (ctx.paths.asks / "w9-1.json").exists())
        assert _looop(ctx, "answer", "w9-1", "yes").returncode == 0
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert out == "yes\n---\ntold: also update the changelog\n", err


def test_wait_for_a_human(ctx: Ctx) -> None:
    import json as _json

    from looop.home import locks

    r = _looop(ctx, "wait", "--json")
    assert r.returncode == 2 and _json.loads(r.stdout)["changed"] == ["pulse-down"]
    ctx.paths.lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = locks.try_flock(ctx.paths.lock_file)  # stand in for a running pulse
    assert fd is not None
    try:
        r = _looop(ctx, "wait", "--timeout", "300ms", LOOOP_WAIT_POLL_MS="20")
        assert r.returncode == 124
        p = subprocess.Popen(
            [sys.executable, "-m", "looop", "wait", "--actionable", "--json"],
            env=_env(ctx, LOOOP_WAIT_POLL_MS="20"),
            stdout=subprocess.PIPE,
            text=True,
        )
        from looop.human.mailbox import new_ask

        new_ask(ctx.paths.asks, ctx.paths.answers, "w1", "approve?", None, [], 1.0)
        out, _ = p.communicate(timeout=30)
        got = _json.loads(out)
        assert p.returncode == 0 and got["changed"] == ["asks"]
        assert got["asks"][0]["id"] == "w1-1"
    finally:
        os.close(fd)


def test_await_answer_is_the_human_rooms_wait(tmp_path: Path) -> None:
    from looop.human.askwait import await_answer
    from looop.human.mailbox import answer, new_ask
    from looop.human.tellbox import new_tell
    from tests.clocks import FixedClock

    asks, answers, tells = tmp_path / "asks", tmp_path / "answers", tmp_path / "tells"
    clock = FixedClock()
    rec = new_ask(asks, answers, "w1", "ship?", None, [], clock.now())
    assert await_answer(asks, answers, tells, rec["id"], "w1", clock, 0.01, 0.05) is None
    new_tell(tells, "w1", "also lint", clock.now())
    answer(asks, answers, rec["id"], "yes", clock.now())
    got = await_answer(asks, answers, tells, rec["id"], "w1", clock, 0.01, 5)
    assert got == ("yes", ["also lint"])
    assert not (asks / f"{rec['id']}.json").exists()  # archived
