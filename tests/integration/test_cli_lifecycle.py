"""A newcomer's lifecycle verbs as real processes: status while beats fail, a foreground
tick holding the beat, `down --keep-workers`, attaching without the runner on PATH, workers
that cannot start, and a worker whose supervisor was SIGKILLed."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from looop.core.context import Ctx
from looop.sessions.state import get_session, list_sessions
from tests.helpers import await_event, clean_env, wire

pytestmark = pytest.mark.timeout(120)

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # status's one time format (local)


def _env(ctx: Ctx, **extra: str) -> dict[str, str]:
    home = ctx.paths.data.parent
    return clean_env(home, ctx.paths.data, **{"LOOOP_INTERVAL": "3600", **extra})


def _looop(ctx: Ctx, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=_env(ctx, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(ctx: Ctx, tick: str, worker: str = "cat {{prompt_file}}") -> None:
    obj = {"default": "x", "runners": {"x": {"tick": tick, "worker": worker}}, "max_daily_usd": 0}
    ctx.paths.config.write_text(json.dumps(obj))


def test_status_of_a_pulse_whose_beats_fail(ctx: Ctx) -> None:
    wire(ctx, [{"exit": 3, "stderr": "provider exploded"}])
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "pulse"],
        env=_env(ctx, LOOOP_LOG_FORMAT="json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep")  # the first beat failed and the pulse sleeps
        st = json.loads(_looop(ctx, "status", "--json").stdout)
        assert st["pulse"]["running"] is True and st["pulse"]["pid"] == str(p.pid)
        assert st["health"] == "failing" and st["failing_streak"] == 1
        beat = st["last_beat"]
        assert beat["outcome"] == "failed" and "exited 3" in beat["detail"]
        assert beat["ts"] <= st["now"]["ts"] and re.fullmatch(STAMP, beat["at"])
        assert st["retry"]["ts"] > st["now"]["ts"]  # backoff: the next runner call is later
        assert st["next_beat"]["ts"] > st["now"]["ts"] and st["next_beat"]["reason"] == "idle"
        out = _looop(ctx, "status").stdout
        assert f"pulse:     running (pid {p.pid}) — failing: 1 beat in a row" in out
        assert re.search(rf"last beat: {STAMP} \((\d+s ago|now)\) · failed: .*exited 3", out)
        assert re.search(rf"retry:     {STAMP} \(in \d+[sm]\)", out)
        assert re.search(rf"next beat: {STAMP} \(in \d+[hm]\) · idle", out)
        for heading in ("PULSE", "SPEND", "WORK"):
            assert heading in out.splitlines()
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)


def test_a_foreground_tick_holds_the_beat_and_is_named(ctx: Ctx, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    _config(ctx, f"sh -c {shlex.quote(f'read x < {shlex.quote(str(gate))}')}")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "tick"],
        env=_env(ctx),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # opens once the runner reads the gate: from then on the tick holds the beat
        with open(gate, "w") as w:
            _while_a_tick_holds_the_beat(ctx, p.pid)
            w.write("go\n")
    finally:
        p.wait(timeout=30)
    assert json.loads(_looop(ctx, "status", "--json").stdout)["tick"] is None


def _while_a_tick_holds_the_beat(ctx: Ctx, pid: int) -> None:
    st = json.loads(_looop(ctx, "status", "--json").stdout)
    assert st["pulse"]["running"] is False and st["health"] == "tick"
    assert st["tick"] == {"pid": str(pid)}
    assert st["last_beat"]["outcome"] == "deciding"
    out = _looop(ctx, "status").stdout
    assert f"a foreground `looop tick` holds the beat (pid {pid})" in out
    assert "running (pid )" not in out
    rows = {x["id"]: x for x in json.loads(_looop(ctx, "ls", "--json").stdout)}
    assert rows["pulse"]["health"] == "down" and rows["pulse"]["state"] == "tick"
    r = _looop(ctx, "tick")
    assert r.returncode == 1 and f"another tick holds the beat (pid {pid})" in r.stderr
    assert "pulse" not in r.stderr
    r = _looop(ctx, "tick", "--dry-run")  # read-only: no lock needed, nothing refused
    assert r.returncode == 0 and "You are the decider" in r.stdout, r.stderr
    r = _looop(ctx, "up")
    assert r.returncode == 1 and f"holds the beat (pid {pid})" in r.stderr
    r = _looop(ctx, "down")
    assert r.returncode == 0 and "ends on its own" in r.stdout, r.stderr


def test_dry_run_beside_a_running_pulse(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}])
    r = _looop(ctx, "up")
    assert r.returncode == 0, r.stderr
    try:
        r = _looop(ctx, "tick", "--dry-run")
        assert r.returncode == 0 and "You are the decider" in r.stdout, r.stderr
        r = _looop(ctx, "tick")
        assert r.returncode == 1 and "a pulse is running (pid " in r.stderr
    finally:
        _looop(ctx, "down")


def test_down_keep_workers_stops_only_the_pulse(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    r = _looop(ctx, "up")
    assert r.returncode == 0, r.stderr
    try:
        r = _looop(ctx, "worker", "start", "w1", "work", "--command", "sleep 600 # {{prompt_file}}")
        assert r.returncode == 0, r.stderr
        r = _looop(ctx, "down", "--keep-workers")
        assert r.returncode == 0, r.stderr
        assert "pulse stopped" in r.stdout and "left 1 worker(s) running: w1" in r.stdout
        assert get_session(ctx.paths.data, "w1").alive
        assert not json.loads(_looop(ctx, "status", "--json").stdout)["pulse"]["running"]
    finally:
        r = _looop(ctx, "down")
    assert "stopped 1 worker(s): w1" in r.stdout
    assert not any(s.alive for s in list_sessions(ctx.paths.data))


def test_bare_looop_attaches_without_the_runner_on_path(ctx: Ctx, tmp_path: Path) -> None:
    script = wire(ctx, [{"decision": {"action": "noop"}}])
    bindir = tmp_path / "agent-bin"
    bindir.mkdir()
    agent = bindir / "my-agent"
    agent.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m looop.demo.runner "
        f"--script {shlex.quote(str(script))}\n"
    )
    agent.chmod(0o755)
    _config(ctx, "my-agent")
    base_path = _env(ctx)["PATH"]
    r = _looop(ctx, "up", PATH=f"{bindir}:{base_path}")
    assert r.returncode == 0, r.stderr
    try:
        assert _looop(ctx, "up").returncode == 0  # `up` again from a shell without my-agent
        child = pexpect.spawn(
            sys.executable, ["-m", "looop"], env=_env(ctx), encoding="utf-8", timeout=45
        )
        try:
            child.expect("already running")
            child.expect("attaching")
            child.sendintr()  # a viewer detaches: the pulse `up` started runs on
            child.expect("detached; the pulse runs on")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert child.exitstatus == 0
        status = json.loads(_looop(ctx, "status", "--json").stdout)
        assert status["pulse"]["running"] is True
    finally:
        _looop(ctx, "down")
    # starting (not attaching) still refuses a runner it cannot find
    r = _looop(ctx, "up")
    assert r.returncode == 1 and "my-agent" in r.stderr and "not on PATH" in r.stderr


@pytest.mark.parametrize(
    ("args", "worker"),
    [
        (["--command", "/nonexistent/bin # {{prompt_file}}"], "cat {{prompt_file}}"),
        ([], "no-such-agent-binary {{prompt_file}}"),
    ],
    ids=["missing-command", "runner-not-on-path"],
)
def test_worker_start_that_cannot_run_fails(ctx: Ctx, args: list[str], worker: str) -> None:
    _config(ctx, "true", worker=worker)
    t0 = time.monotonic()
    r = _looop(ctx, "worker", "start", "w1", "work", *args)
    assert r.returncode == 1, r.stdout
    assert "✓" not in r.stdout and r.stderr.count("\n") == 1
    assert "exited at once with code 127" in r.stderr and "PATH" in r.stderr
    assert time.monotonic() - t0 < 30
    assert not get_session(ctx.paths.data, "w1").alive


def test_worker_start_of_a_good_command_succeeds(ctx: Ctx) -> None:
    _config(ctx, "true")
    try:
        r = _looop(ctx, "worker", "start", "w1", "work", "--command", "sleep 600 # {{prompt_file}}")
        assert r.returncode == 0 and "✓" in r.stdout, r.stderr
        assert get_session(ctx.paths.data, "w1").alive
    finally:
        _looop(ctx, "down")


def test_wait_reports_a_worker_whose_supervisor_died(ctx: Ctx) -> None:
    _config(ctx, "true")
    r = _looop(ctx, "worker", "start", "w1", "work", "--command", "sleep 600 # {{prompt_file}}")
    assert r.returncode == 0, r.stderr
    s = get_session(ctx.paths.data, "w1")
    assert s.supervisor_pid is not None and s.child_pid is not None
    try:
        os.kill(s.supervisor_pid, signal.SIGKILL)
        pidfd = os.pidfd_open(s.supervisor_pid)
        try:
            select.select([pidfd], [], [], 20)  # until the kernel has reaped it
        finally:
            os.close(pidfd)
        rows = {x["id"]: x for x in json.loads(_looop(ctx, "ls", "-a", "--json").stdout)}
        assert rows["w1"]["state"] == "dead" and rows["w1"]["health"] == "dead"
        r = _looop(ctx, "wait", "w1", "--timeout", "20s")
        assert r.returncode == 137
        assert r.stderr.count("\n") == 1 and "supervisor died" in r.stderr
        status = json.loads((ctx.paths.sessions / "w1" / "status.json").read_text())
        assert status["state"] not in ("starting", "running")
        r = _looop(ctx, "wait", "w1", "--timeout", "20s")  # again: the same answer
        assert r.returncode == 137 and "supervisor died" in r.stderr
    finally:
        try:
            os.killpg(s.child_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
