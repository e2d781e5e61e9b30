"""The long-lived looops of a home bring its pulse back on their own: when the pulse's
supervisor and the pulse are SIGKILLed while `up` still wants it, the session host (which
outlives the supervisors it forks) or the web server revives it with no verb run, and
`status` then names the real cause (issue 51, item 2)."""

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
from tests.helpers import outside_env, wire

pytestmark = pytest.mark.timeout(150)

BOUND_S = 20.0  # the keepers look every 2 s; a revival starts a supervisor and a pulse


def _env(ctx: Ctx) -> dict[str, str]:
    return outside_env(
        LOOOP_DATA_DIR=str(ctx.paths.data),
        LOOOP_INTERVAL="3600",
        LOOOP_PULSE_RESTART_SECS="0.5",
        LOOOP_PULSE_RESTART_MAX_SECS="2",
    )


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


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


def _pulse_pid(ctx: Ctx) -> int | None:
    try:
        return int((ctx.paths.lock_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _supervisor(ctx: Ctx) -> int:
    meta = json.loads((ctx.paths.sessions / "pulse" / "meta.json").read_text())
    pid = meta["supervisor_pid"]
    assert isinstance(pid, int)
    return pid


def _hosts(ctx: Ctx) -> list[int]:
    """The session hosts serving this home (their environment names its data dir)."""
    needle = f"LOOOP_DATA_DIR={ctx.paths.data}\0".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            comm = Path(f"/proc/{d}/comm").read_text().strip()
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        if comm == "looop-host" and needle in env and _alive(int(d)):
            out.append(int(d))
    return out


def _kill_pulse_and_supervisor(ctx: Ctx) -> tuple[int, int]:
    pulse, supervisor = _pulse_pid(ctx), _supervisor(ctx)
    assert pulse is not None
    os.kill(supervisor, signal.SIGKILL)  # the OOM killer, a stray kill -9
    os.kill(pulse, signal.SIGKILL)
    _await_exit(supervisor, 10)
    _await_exit(pulse, 10)
    return pulse, supervisor


def _await_revived(ctx: Ctx, old_pulse: int, old_supervisor: int) -> float:
    """Files only, no verb (a verb would revive it itself): how long until a new pulse runs
    under a new supervisor."""
    start = time.monotonic()
    while time.monotonic() - start < BOUND_S:
        pid = _pulse_pid(ctx)
        if pid is not None and pid != old_pulse and _alive(pid):
            sup = _supervisor(ctx)
            if sup != old_supervisor and _alive(sup):
                return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"no pulse brought back within {BOUND_S}s")


def _zombies_of(parent: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and fields[1] == str(parent):
            out.append(int(d))
    return out


def _reaps(parent: int) -> None:
    """The revival it started has ended (its pulse is up) and is not left a zombie."""
    deadline = time.monotonic() + 15
    while _zombies_of(parent):
        assert time.monotonic() < deadline, f"{parent} leaves zombies {_zombies_of(parent)}"
        time.sleep(0.2)


def _cause_named(env: dict[str, str], supervisor: int) -> None:
    pulse = json.loads(_run(env, "status", "--json").stdout)["pulse"]
    assert pulse["running"] and pulse["restarts"] == 1, pulse
    assert f"supervisor (pid {supervisor}) died" in str(pulse["last_cause"]), pulse


def test_the_session_host_alone_brings_back_a_pulse_whose_supervisor_was_killed(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        hosts = _hosts(ctx)
        assert len(hosts) == 1, hosts  # the host that forked the pulse's supervisor
        pulse, supervisor = _kill_pulse_and_supervisor(ctx)
        _await_revived(ctx, pulse, supervisor)
        assert _hosts(ctx) == hosts  # the same host, still serving: it did it
        _cause_named(env, supervisor)
        _reaps(hosts[0])
    finally:
        r = _run(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_web_server_alone_brings_back_a_pulse_whose_supervisor_was_killed(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    web = subprocess.Popen(
        [sys.executable, "-m", "looop", "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert web.stdout is not None
        assert web.stdout.readline().startswith(b"http://")  # it serves
        for host in _hosts(ctx):  # no host left to do it: only the web can
            os.kill(host, signal.SIGKILL)
            _await_exit(host, 10)
        pulse, supervisor = _kill_pulse_and_supervisor(ctx)
        _await_revived(ctx, pulse, supervisor)
        assert web.poll() is None
        _cause_named(env, supervisor)
        _reaps(web.pid)
    finally:
        web.terminate()
        web.wait(timeout=20)
        r = _run(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr


def test_neither_keeper_revives_a_pulse_after_down(ctx: Ctx) -> None:
    """`down` means down: the host and the web bring nothing back."""
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _env(ctx)
    r = _run(env, "up")
    web = subprocess.Popen(
        [sys.executable, "-m", "looop", "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert web.stdout is not None
        assert web.stdout.readline().startswith(b"http://")
        r = _run(env, "down")
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(6)  # an absence: three of the keepers' looks
        assert _pulse_pid(ctx) is None
        assert not (ctx.paths.lock_dir / "wanted.json").exists()
    finally:
        web.terminate()
        web.wait(timeout=20)
        _run(env, "down")
