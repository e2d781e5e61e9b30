"""The pulse under the session supervisor: up/down, refusals, bare `looop` foreground."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from looop.core import cgroup
from looop.core.context import Ctx
from looop.sessions.state import get_session, list_sessions
from tests.helpers import outside_env, until, wire
from tests.procwatch import cgroup_of, cgroups_here

pytestmark = pytest.mark.timeout(120)

SLEEPER = "sleep 600; : {{prompt_file}}"


def _env(ctx: Ctx, **extra: str) -> dict[str, str]:
    env = outside_env()
    env.update({"LOOOP_DATA_DIR": str(ctx.paths.data), "LOOOP_INTERVAL": "3600", **extra})
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


def _looop_env(ctx: Ctx, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_worker_the_pulse_started_without_a_host_outlives_the_pulse_run(ctx: Ctx) -> None:
    """No session host: w1's supervisor starts from inside the pulse's run and is adopted by
    the pulse's supervisor (a subreaper). The end of the pulse's run must not sweep it: down
    stops w1 as a worker, and a stray the beat left behind still dies with the run."""
    stray = ctx.paths.data.parent / "stray.pid"
    env = _env(
        ctx,
        LOOOP_SESSION_HOST_IDLE="0",
        LOOOP_RUNTIME_DIR=os.environ["LOOOP_RUNTIME_DIR"],
    )
    wire(
        ctx,
        [
            {"decision": {"action": "start_worker", "id": "w1", "prompt": "work"}},
            {"decision": {"action": "noop"}},
        ],
        worker=SLEEPER,
    )
    # the tick leaves a setsid daemon behind (it is no supervisor of looop's: it must die)
    cfg = json.loads(ctx.paths.config.read_text())
    tick = cfg["runners"]["scripted"]["tick"]
    cfg["runners"]["scripted"]["tick"] = (
        f'sh -c \'setsid sh -c "echo \\$\\$ > {stray}; exec sleep 600" & exec "$@"\' sh {tick}'
    )
    ctx.paths.config.write_text(json.dumps(cfg))
    r = _looop_env(ctx, env, "up")
    try:
        assert r.returncode == 0 and "pulse started" in r.stdout, r.stderr
        r = _looop_env(ctx, env, "expect", "pulse", "start-worker|worker ·", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        w1 = get_session(ctx.paths.data, "w1")
        assert w1.alive
        pid = int(stray.read_text().strip())
    finally:
        r = _looop_env(ctx, env, "down")
    assert r.returncode == 0, r.stderr
    assert "pulse stopped" in r.stdout and "w1" in r.stdout, r.stdout
    status = json.loads((ctx.paths.data / "sessions" / "w1" / "status.json").read_text())
    assert "supervisor died" not in str(status.get("error")), status
    assert not any(s.alive for s in list_sessions(ctx.paths.data))
    assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), "the beat's stray outlived the run"


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] in ([b"Z"], [b"X"])
    except OSError:
        return True


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


def _heal_env(ctx: Ctx, **extra: str) -> dict[str, str]:
    fast = {
        "LOOOP_PULSE_RESTART_SECS": "0.5",
        "LOOOP_PULSE_RESTART_MAX_SECS": "2",
        "LOOOP_PULSE_WATCHDOG_SECS": "2",
    }
    return _env(ctx, **{**fast, **extra})


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _status(env: dict[str, str]) -> dict[str, object]:
    r = _run(env, "status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert isinstance(st, dict)
    return st


def _await_new_pulse(env: dict[str, str], old: str, secs: float) -> dict[str, object]:
    """Poll status (no event to await across processes) until a pulse other than `old` runs."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        st = _status(env)
        pulse = st["pulse"]
        assert isinstance(pulse, dict)
        if pulse["running"] and pulse["pid"] not in ("", old):
            return st
        time.sleep(0.2)
    raise AssertionError(f"no new pulse within {secs}s: {_status(env)}")


def _beats(ctx: Ctx, pid: str) -> int:
    n = 0
    for line in ctx.paths.events.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "pulse_start" and str(rec.get("pid")) == pid:
            n += 1
    return n


def test_a_sigkilled_pulse_is_restarted_and_beats_again_with_the_cause_in_status(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _heal_env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stderr
        first = _status(env)["pulse"]
        assert isinstance(first, dict) and first["pid"] and first["pid"] in r.stdout
        os.kill(int(first["pid"]), signal.SIGKILL)
        st = _await_new_pulse(env, str(first["pid"]), 30)
        pulse = st["pulse"]
        assert isinstance(pulse, dict)
        assert pulse["restarts"] == 1 and "SIGKILL" in str(pulse["last_cause"])
        assert _beats(ctx, str(pulse["pid"])) == 1  # the new pulse started and recorded it
        r = _run(env, "expect", "pulse", "next beat in", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr  # … and beat again
        assert "restarts=1" in _run(env, "status").stdout
    finally:
        r = _run(env, "down")
    assert r.returncode == 0 and "pulse stopped" in r.stdout, r.stdout + r.stderr
    assert not get_session(ctx.paths.data, "pulse").alive


def test_a_stopped_pulse_is_restarted_by_the_watchdog(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _heal_env(ctx)
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stderr
        first = _status(env)["pulse"]
        assert isinstance(first, dict)
        # asleep between beats (a beat promises its whole budget), then frozen
        r = _run(env, "expect", "pulse", "next beat in", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        os.kill(int(first["pid"]), signal.SIGSTOP)  # alive, but no progress
        st = _await_new_pulse(env, str(first["pid"]), 40)
        pulse = st["pulse"]
        assert isinstance(pulse, dict)
        assert pulse["restarts"] == 1 and "watchdog" in str(pulse["last_cause"])
    finally:
        r = _run(env, "down")
    assert r.returncode == 0, r.stderr
    assert not get_session(ctx.paths.data, "pulse").alive


def test_down_while_the_pulse_waits_to_restart_ends_it_for_good(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = _heal_env(ctx, LOOOP_PULSE_RESTART_SECS="30", LOOOP_PULSE_RESTART_MAX_SECS="30")
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stderr
        pid = _status(env)["pulse"]
        assert isinstance(pid, dict)
        os.kill(int(pid["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while _status(env)["health"] != "restarting":
            assert time.monotonic() < deadline, _status(env)
            time.sleep(0.2)
        assert "restarting" in _run(env, "status").stdout
    finally:
        r = _run(env, "down")
    assert r.returncode == 0, r.stderr
    assert not get_session(ctx.paths.data, "pulse").alive


def test_ctrl_c_on_a_viewer_detaches_and_leaves_the_pulse_and_workers_running(ctx: Ctx) -> None:
    wire(
        ctx,
        [
            {"decision": {"action": "start_worker", "id": "w3", "prompt": "work"}},
            {"decision": {"action": "noop"}},
        ],
        worker=SLEEPER,
    )
    r = _looop(ctx, "up")
    try:
        assert r.returncode == 0, r.stderr
        r = _looop(ctx, "expect", "pulse", "start-worker|worker ·", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        pulse_pid = _status(_env(ctx))["pulse"]
        assert isinstance(pulse_pid, dict) and pulse_pid["running"]
        for stop in ("intr", "term"):
            child = pexpect.spawn(
                sys.executable, ["-m", "looop"], env=_env(ctx), encoding="utf-8", timeout=45
            )
            try:
                child.expect("attaching; Ctrl-C detaches")
                if stop == "intr":
                    child.sendintr()
                else:
                    child.kill(signal.SIGTERM)
                child.expect("detached; the pulse runs on")
                child.expect(pexpect.EOF)
            finally:
                child.close(force=True)
            assert child.exitstatus == 0, stop
            st = _status(_env(ctx))
            assert st["pulse"] == pulse_pid, stop  # the same pulse, still running
            assert get_session(ctx.paths.data, "w3").alive, stop
    finally:
        r = _looop(ctx, "down")
    assert r.returncode == 0 and "w3" in r.stdout, r.stdout + r.stderr


PEN_MOUNTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/freezer")


@pytest.mark.skipif(not cgroups_here(), reason="no cgroup can be made here")
def test_the_pulse_keeps_its_sensors_pen_inside_its_session(ctx: Ctx) -> None:
    """The pulse sits in its sensors' cgroup (its pen) between beats, inside its session's
    group: the session host still starts its workers, what a sensor leaves behind still dies,
    and `down` leaves no pen behind."""
    leak, leaked = ctx.paths.data.parent / "leak", ctx.paths.data.parent / "leaked.pid"
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    sensor = ctx.paths.sensor("steady")
    # the same reading every beat (skip beats); an env -i setsid escapee when told to
    sensor.write_text(
        "#!/bin/sh\n"
        # a background job is no group leader: setsid (and env) exec in place: $! is the sleep
        f"if rm {leak} 2>/dev/null; then env -i setsid sleep 600 </dev/null >/dev/null 2>&1 & "
        f"echo $! > {leaked}; fi\n"
        'echo \'{"signal":{"ok":true}}\'\n'
    )
    sensor.chmod(0o755)
    wire(
        ctx,
        [
            {"decision": {"action": "start_worker", "id": "w1", "prompt": "work"}},
            {"decision": {"action": "noop"}},
        ],
        worker=SLEEPER,
    )
    env = _env(ctx, LOOOP_INTERVAL="1", LOOOP_RUNTIME_DIR=os.environ["LOOOP_RUNTIME_DIR"])
    r = _looop_env(ctx, env, "up")
    pens: list[str] = []
    try:
        assert r.returncode == 0 and "pulse started" in r.stdout, r.stderr
        pulse = get_session(ctx.paths.data, "pulse")
        assert pulse.child_pid is not None and pulse.supervisor_pid is not None
        r = _looop_env(ctx, env, "expect", "pulse", "start-worker|worker ·", "--timeout", "30s")
        assert r.returncode == 0, r.stdout + r.stderr
        assert get_session(ctx.paths.data, "w1").alive  # the host took the pulse's request
        pen = f"{cgroup.PEN}.{pulse.child_pid}"
        # a skip beat later it sits in its pen, right inside the session's own group
        assert until(lambda: os.path.basename(cgroup_of(pulse.child_pid)) == pen, 30)
        where = cgroup_of(pulse.child_pid)
        session = cgroup.home_of(where)
        assert os.path.dirname(session) == cgroup.folder_for(cgroup_of(pulse.supervisor_pid))
        pens = [m + where for m in PEN_MOUNTS if os.path.isdir(m + where)]
        assert len(pens) == 1, where
        # a sensor leaves an escapee: it dies with its beat, and the next beat pens the pulse
        leak.touch()
        assert until(lambda: leaked.exists() and leaked.read_text().strip().isdigit(), 30)
        escapee = int(leaked.read_text())
        assert until(lambda: not _alive(escapee), 10), "the sensor's escapee outlived its beat"
        assert until(lambda: cgroup_of(pulse.child_pid) == where, 30)
    finally:
        r = _looop_env(ctx, env, "down")
    assert r.returncode == 0, r.stderr
    assert not any(s.alive for s in list_sessions(ctx.paths.data))
    assert pens and not os.path.exists(pens[0]), "the pulse's pen outlived it"


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and not _zombie(pid)


def _cadence(env: dict[str, str]) -> str:
    """The first settled cadence a foreground pulse says (active or idle), past the first
    beat's decide (busy)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "pulse"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert p.stdout is not None
    try:
        for line in p.stdout:
            ev = json.loads(line) if line.startswith("{") else {}
            if ev.get("event") == "sleep" and ev.get("reason") in ("active", "idle"):
                return str(ev["reason"])
        return ""
    finally:
        p.kill()
        p.wait(30)


def test_the_pulse_beats_at_the_active_cadence_while_a_worker_lives(ctx: Ctx) -> None:
    """Its cadence asks whether any worker runs (the first live one answers): a live worker
    beside a dead one keeps it at active_interval; with none alive it idles."""
    from looop.sessions.client import kill
    from looop.sessions.spawner import spawn

    wire(ctx, [{"decision": {"action": "noop"}}] * 9)
    env = _env(ctx, LOOOP_ACTIVE_INTERVAL="1", LOOOP_BUSY_INTERVAL="1", LOOOP_LOG_FORMAT="json")
    spawn(ctx.paths.data, "gone", ["true"], cwd=ctx.paths.data, env=outside_env())
    until(lambda: not get_session(ctx.paths.data, "gone").alive, 30)
    spawn(ctx.paths.data, "w1", ["sleep", "600"], cwd=ctx.paths.data, env=outside_env())
    try:
        assert _cadence(env) == "active"
    finally:
        kill(ctx.paths.data, "w1")
    until(lambda: not get_session(ctx.paths.data, "w1").alive, 30)
    assert _cadence(env) == "idle"
