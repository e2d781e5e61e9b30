"""The pulse under the session supervisor: up/down, refusals, bare `looop` foreground."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from looop.core.context import Ctx
from looop.sessions import get_session, list_sessions
from tests.helpers import wire

pytestmark = pytest.mark.timeout(120)

SLEEPER = "sleep 600; : {{prompt_file}}"


def _env(ctx: Ctx, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_INTERVAL="3600", **extra)
    return env


def _looop(ctx: Ctx, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=_env(ctx),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_up_runs_pulse_as_session_and_down_stops_pulse_then_workers(ctx: Ctx) -> None:
    wire(
        ctx,
        [
            {"decision": {"action": "start_worker", "id": "w1", "prompt": "work"}},
            {"decision": {"action": "noop"}},
        ],
        worker=SLEEPER,
    )
    r = _looop(ctx, "up")
    try:
        assert r.returncode == 0 and "pulse started" in r.stdout, r.stderr
        pulse = get_session(ctx.paths.data, "pulse")
        assert pulse.alive
        # the first beat starts w1; wait for it through the pulse's own log
        r = _looop(ctx, "expect", "pulse", "start-worker|worker ·", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        r = _looop(ctx, "ls", "--json")
        rows = {row["id"]: row for row in json.loads(r.stdout)}
        assert rows["pulse"]["health"] == "up" and rows["w1"]["health"] == "busy"
        # typing into the pulse is refused; reading it is fine
        for verb in (
            ["send", "pulse", "hi"],
            ["key", "pulse", "Enter"],
            ["kill", "pulse"],
            ["resize", "pulse", "80x24"],
            ["restart", "pulse"],
            ["flag", "pulse"],
        ):
            r = _looop(ctx, *verb)
            assert r.returncode == 1 and "control loop" in r.stderr, verb
            assert r.stderr.count("\n") == 1
        assert _looop(ctx, "shot", "pulse").returncode == 0
        assert "pulse up" in _looop(ctx, "log", "pulse").stdout
        # a second up is a no-op
        r = _looop(ctx, "up")
        assert r.returncode == 0 and "already running" in r.stdout
    finally:
        r = _looop(ctx, "down")
    assert r.returncode == 0, r.stderr
    assert "pulse stopped" in r.stdout and "w1" in r.stdout
    assert not any(s.alive for s in list_sessions(ctx.paths.data))


def test_concurrent_ups_start_one_pulse(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "looop", "up"],
            env=_env(ctx),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        outs = [p.communicate(timeout=60)[0] for p in procs]
        assert sum("pulse started" in o for o in outs) == 1, outs
        assert all(p.returncode == 0 for p in procs)
    finally:
        _looop(ctx, "down")


def test_bare_looop_streams_and_ctrl_c_tears_everything_down(ctx: Ctx, tmp_path: Path) -> None:
    wire(
        ctx,
        [
            {"decision": {"action": "start_worker", "id": "w2", "prompt": "work"}},
            {"decision": {"action": "noop"}},
        ],
        worker=SLEEPER,
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "looop"],
        env=_env(ctx),
        encoding="utf-8",
        timeout=45,
        dimensions=(40, 160),
    )
    try:
        child.expect("pulse started")
        child.expect("start-worker w2|worker · ")
        assert get_session(ctx.paths.data, "w2").alive
        child.sendintr()
        child.expect("stopped 1 worker")
        child.expect("pulse stopped")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert not any(s.alive for s in list_sessions(ctx.paths.data))


def test_bare_looop_sigterm_also_tears_down(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    child = pexpect.spawn(
        sys.executable, ["-m", "looop"], env=_env(ctx), encoding="utf-8", timeout=45
    )
    try:
        child.expect("pulse up")
        child.kill(signal.SIGTERM)
        child.expect("pulse stopped")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert not get_session(ctx.paths.data, "pulse").alive
