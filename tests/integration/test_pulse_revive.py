"""Two levels of supervision: a pulse whose own supervisor dies is brought back by the next
looop of its home, and a pulse stopped by anything but `down` is restarted."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.state import get_session
from tests.helpers import outside_env, wire

pytestmark = pytest.mark.timeout(150)


def _env(ctx: Ctx) -> dict[str, str]:
    return outside_env(
        LOOOP_DATA_DIR=str(ctx.paths.data),
        LOOOP_INTERVAL="3600",
        LOOOP_PULSE_RESTART_SECS="0.5",
        LOOOP_PULSE_RESTART_MAX_SECS="2",
        LOOOP_PULSE_WATCHDOG_SECS="30",
    )


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _pulse(env: dict[str, str]) -> dict[str, object]:
    r = _run(env, "status", "--json")
    assert r.returncode == 0, r.stderr
    pulse = json.loads(r.stdout)["pulse"]
    assert isinstance(pulse, dict)
    return pulse


def _await_exit(pid: int, secs: float) -> None:
    """Wait on a pidfd (an event, not a poll) for a process that is not our child."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], secs)
    finally:
        os.close(fd)
    assert ready, f"pid {pid} still runs after {secs}s"


def _await_new_pulse(env: dict[str, str], old: object, secs: float) -> dict[str, object]:
    """Poll status (a verb's own doing is what is under test) until a pulse other than `old`
    runs."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        pulse = _pulse(env)
        if pulse["running"] and pulse["pid"] not in ("", old):
            return pulse
        time.sleep(0.2)
    raise AssertionError(f"no new pulse within {secs}s: {_pulse(env)}")


def _supervisor(ctx: Ctx) -> int:
    meta = json.loads((ctx.paths.sessions / "pulse" / "meta.json").read_text())
    pid = meta["supervisor_pid"]
    assert isinstance(pid, int)
    return pid


def test_a_killed_supervisor_is_noticed_by_the_next_verb_which_brings_the_pulse_back(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        first = _pulse(env)["pid"]
        os.kill(int(str(first)), signal.SIGKILL)  # an earlier failure, healed by its supervisor
        second = _await_new_pulse(env, first, 30)
        assert second["restarts"] == 1 and "SIGKILL" in str(second["last_cause"])
        supervisor = _supervisor(ctx)
        os.kill(supervisor, signal.SIGKILL)  # the OOM killer, a stray kill -9
        _await_exit(supervisor, 10)
        _await_exit(int(str(second["pid"])), 30)  # its PTY hung up: the pulse stops too
        assert not get_session(ctx.paths.data, "pulse").alive
        r = _run(env, "status")  # the next looop of the home notices, and says the real cause
        assert r.returncode == 0, r.stderr
        line = next(ln for ln in r.stdout.splitlines() if ln.lstrip().startswith("pulse"))
        assert "restarting" in line and f"supervisor (pid {supervisor}) died" in line, line
        assert "SIGKILL" not in line, line  # not the earlier, healed restart's cause
        third = _await_new_pulse(env, second["pid"], 30)
        assert third["restarts"] == 2, third
        assert f"supervisor (pid {supervisor}) died" in str(third["last_cause"]), third
        assert get_session(ctx.paths.data, "pulse").alive  # supervised again
        assert _supervisor(ctx) != supervisor
        r = _run(env, "expect", "pulse", "next beat in", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr  # … and it beats
    finally:
        r = _run(env, "down")
    assert r.returncode == 0 and "pulse stopped" in r.stdout, r.stdout + r.stderr
    assert not get_session(ctx.paths.data, "pulse").alive
    assert _pulse(env)["running"] is False  # after `down`, a verb brings nothing back
    assert not (ctx.paths.lock_dir / "wanted.json").exists()


def test_a_pulse_stopped_by_a_stray_sigterm_is_restarted_but_down_stops_it_for_good(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        r = _run(env, "expect", "pulse", "next beat in", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        first = _pulse(env)["pid"]
        os.kill(int(str(first)), signal.SIGTERM)  # not a `down`: nobody asked it to stop
        _await_exit(int(str(first)), 30)
        second = _await_new_pulse(env, first, 30)
        assert second["restarts"] == 1 and "exit 75" in str(second["last_cause"]), second
        assert "SIGTERM stopped this pulse" in _run(env, "log", "pulse").stdout
    finally:
        r = _run(env, "down")
    assert r.returncode == 0 and "pulse stopped" in r.stdout, r.stdout + r.stderr
    assert not get_session(ctx.paths.data, "pulse").alive
    status = json.loads((ctx.paths.sessions / "pulse" / "status.json").read_text())
    assert status["exit_code"] == 0, status  # `down`'s stop is a clean one


def test_status_reports_a_revival_that_cannot_start_and_backs_off(ctx: Ctx, tmp_path: Path) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        pulse = _pulse(env)["pid"]
        supervisor = _supervisor(ctx)
        cfg = json.loads(ctx.paths.config.read_text())  # its runner is gone meanwhile
        cfg["runners"]["scripted"]["tick"] = str(tmp_path / "no-such-runner")
        ctx.paths.config.write_text(json.dumps(cfg))
        os.kill(supervisor, signal.SIGKILL)
        _await_exit(int(str(pulse)), 30)
        deadline = time.monotonic() + 30
        while True:  # a revival is tried and fails; status says why, and tries again later
            last = _pulse(env)
            if "could not start again" in str(last["last_cause"]):
                break
            assert time.monotonic() < deadline, last
            time.sleep(0.2)
        assert "no-such-runner" in str(last["last_cause"]) and last["restarting"], last
        wanted = json.loads((ctx.paths.lock_dir / "wanted.json").read_text())
        assert wanted["streak"] >= 1
    finally:
        r = _run(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _pulse(env)["restarting"] is False
