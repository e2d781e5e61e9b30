"""The pulse as real processes: single instance, signals, up/down, crash recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.helpers import await_event, outside_env, wire

pytestmark = pytest.mark.timeout(90)


def _env(ctx: Ctx, **extra: str) -> dict[str, str]:
    env = outside_env()
    env.update(
        LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_LOG_FORMAT="json", LOOOP_INTERVAL="3600", **extra
    )
    return env


def _looop(*args: str) -> list[str]:
    return [sys.executable, "-m", "looop", *args]


def _start_pulse(ctx: Ctx) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        _looop("pulse"),
        env=_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert p.stdout is not None
    return p


@pytest.fixture
def pulse(ctx: Ctx) -> Iterator[subprocess.Popen[bytes]]:
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}])
    p = _start_pulse(ctx)
    assert p.stdout is not None
    try:
        await_event(p.stdout, "sleep")
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_second_pulse_exits_1_with_clear_message(ctx: Ctx, pulse: subprocess.Popen[bytes]) -> None:
    r = subprocess.run(_looop("pulse"), env=_env(ctx), capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "already running" in err and str(pulse.pid) in err and err.count("\n") == 1


def test_sigterm_stops_cleanly_and_releases_lock(ctx: Ctx, pulse: subprocess.Popen[bytes]) -> None:
    pulse.send_signal(signal.SIGTERM)
    assert pulse.stdout is not None
    ev = await_event(pulse.stdout, "pulse.stop")
    assert ev["beats"] == 1
    assert pulse.wait(timeout=10) == 0
    assert not ctx.paths.pid_file.exists()
    r = subprocess.run(_looop("status", "--json"), env=_env(ctx), capture_output=True, timeout=30)
    assert json.loads(r.stdout)["pulse"]["running"] is False


def test_status_sees_running_pulse(ctx: Ctx, pulse: subprocess.Popen[bytes]) -> None:
    r = subprocess.run(_looop("status", "--json"), env=_env(ctx), capture_output=True, timeout=30)
    st = json.loads(r.stdout)
    assert st["pulse"] == {
        "running": True,
        "pid": str(pulse.pid),
        "interval_s": 3600,
        "restarts": 0,
        "last_cause": None,
        "restarting": False,
        "revived": False,
        "strays": [],
    }
    assert st["last_tick"]["hash"]


def test_tick_refused_while_pulse_runs(ctx: Ctx, pulse: subprocess.Popen[bytes]) -> None:
    r = subprocess.run(_looop("tick"), env=_env(ctx), capture_output=True, timeout=30)
    assert r.returncode == 1 and "pulse is running" in r.stderr.decode()


def test_up_is_idempotent_and_down_stops(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    procs = [
        subprocess.Popen(_looop("up"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    try:
        assert all(p.returncode == 0 for p in procs), outs
        started = [o for o, _ in outs if b"pulse started" in o]
        assert len(started) == 1, outs
        r = subprocess.run(_looop("status", "--json"), env=env, capture_output=True, timeout=30)
        assert json.loads(r.stdout)["pulse"]["running"] is True
    finally:
        r = subprocess.run(_looop("down"), env=env, capture_output=True, timeout=60)
    assert r.returncode == 0 and b"pulse stopped" in r.stdout
    r = subprocess.run(_looop("down"), env=env, capture_output=True, timeout=30)
    assert b"not running" in r.stdout


def test_up_refuses_missing_runner(ctx: Ctx) -> None:
    ctx.paths.config.write_text(
        '{"tick_command": "no-such-agent-cli -p", "worker_command": "x {{prompt_file}}"}'
    )
    r = subprocess.run(_looop("up"), env=_env(ctx), capture_output=True, timeout=30)
    assert r.returncode == 1
    assert "no-such-agent-cli" in r.stderr.decode() and r.stderr.decode().count("\n") == 1


def test_sigkill_mid_run_shell_is_reported_not_rerun(ctx: Ctx, tmp_path: Path) -> None:
    marker = ctx.paths.data / "ran"
    wire(
        ctx,
        [
            {"decision": {"action": "run_shell", "cmd": "echo once >> ran; sleep 60"}},
            {"decision": {"action": "noop", "reason": "after the crash"}},
        ],
    )
    p = subprocess.Popen(
        _looop("tick"),
        env=_env(ctx),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the side effect is the only observable signal here
        assert marker.exists()
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    # kill the orphaned shell too (it runs in its own process group)
    subprocess.run(["pkill", "-f", "echo once >> ran; sleep 60"], check=False)
    r = subprocess.run(_looop("tick"), env=_env(ctx), capture_output=True, timeout=60)
    evs = [json.loads(ln) for ln in r.stderr.decode().splitlines() if ln.startswith("{")]
    names = [e["event"] for e in evs]
    assert "tick.interrupted" in names
    assert marker.read_text() == "once\n"  # not re-run
    r2 = subprocess.run(_looop("tick"), env=_env(ctx), capture_output=True, timeout=60)
    assert b"tick.interrupted" not in r2.stderr  # reported once
    # and the durable record has its line, once: the move that died mid-way is journaled
    journal = ctx.paths.journal.read_text().splitlines()
    lines = [ln for ln in journal if "interrupted · run-shell" in ln]
    assert len(lines) == 1 and "NOT re-run" in lines[0], journal


def test_read_only_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.write_text("a file where the data dir should be")
    env = outside_env()
    env["LOOOP_DATA_DIR"] = str(target / "data")
    r = subprocess.run(_looop("tick", "--dry-run"), env=env, capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "not usable" in err and "LOOOP_DATA_DIR" in err


def test_read_only_mount_is_one_clear_line(ctx: Ctx) -> None:
    """A data dir on a read-only mount (private mount namespace; skipped where not allowed)."""
    wire(ctx, [{"decision": {"action": "noop"}}])
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {ctx.paths.data} {ctx.paths.data}"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip("cannot make a private read-only mount here: " + probe.stderr.decode())
    cmd = " ".join(_looop("tick"))
    r = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind -o ro {ctx.paths.data} {ctx.paths.data} && exec {cmd}",
        ],
        env=_env(ctx),
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.decode().splitlines() if not ln.startswith("{")]
    assert len(lines) == 1 and "Read-only" in lines[0], r.stderr.decode()
    assert not list(ctx.paths.data.glob(".*.tmp.*"))


def test_a_read_only_data_dir_is_named_with_its_fix_by_goal_write_and_status(ctx: Ctx) -> None:
    """Not the temp file the write failed on: the data dir, and what to do; status says so."""
    ro = f"mount --bind -o ro {ctx.paths.data} {ctx.paths.data}"
    if subprocess.run(
        ["unshare", "-m", "sh", "-c", ro], capture_output=True, timeout=30
    ).returncode:
        pytest.skip("cannot make a private read-only mount here")
    write, status = " ".join(_looop("goal", "write", "g1", "hi")), " ".join(_looop("status"))
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{ro} && {write}; echo ---; exec {status}"],
        env=_env(ctx),
        capture_output=True,
        timeout=60,
    )
    err, out = r.stderr.decode(), r.stdout.decode().split("---\n")[-1]
    assert err.count("\n") == 1 and ".tmp." not in err, err
    assert f"data dir {ctx.paths.data}" in err and "LOOOP_DATA_DIR" in err
    assert f"the data dir {ctx.paths.data} is read-only" in out and "remount it writable" in out


def test_sigterm_mid_decide_finishes_the_beat_first(ctx: Ctx) -> None:
    wire(
        ctx,
        [
            {
                "sleep": 1.5,
                "decision": {
                    "action": "write_goal",
                    "id": "late",
                    "body": "goal: written after SIGTERM",
                },
            }
        ],
    )
    p = _start_pulse(ctx)
    assert p.stdout is not None
    try:
        await_event(p.stdout, "tick.start")
        p.send_signal(signal.SIGTERM)
        decided = await_event(p.stdout, "tick.decided")
        assert decided["action"] == "goal"
        await_event(p.stdout, "pulse.stop")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert (ctx.paths.goals / "late.md").exists()
    assert "late" in ctx.paths.journal.read_text() or "write-goal" in ctx.paths.journal.read_text()
    assert not ctx.paths.pid_file.exists()
