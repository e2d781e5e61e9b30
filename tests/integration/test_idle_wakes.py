"""An idle home is at rest (issue 56, item 2): between beats neither the session host nor a
session's supervisor wakes on a timer of its own. The supervisor is told by dnotify when its
control socket's name goes (and binds it again at once); the host holds a pidfd of the
pulse's supervisor, whose exit wakes it to bring the pulse back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.sessionfiles import socket_file
from tests.helpers import clean_env, wait_until, wire

pytestmark = [pytest.mark.timeout(150), pytest.mark.process]

WINDOW_S = 6.0  # a 2 s timer wakes at least twice in it
TRIES = 5  # windows measured until one is quiet (a start or a beat may still settle)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _wakes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for pid {pid}")


def _host(ctx: Ctx) -> int:
    needle = f"LOOOP_DATA_DIR={ctx.paths.data}\0".encode()
    for d in os.listdir("/proc"):
        try:
            comm = Path(f"/proc/{d}/comm").read_text().strip()
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        if comm == "looop-host" and needle in env:
            return int(d)
    raise AssertionError("no session host serves the home")


def _supervisor(ctx: Ctx, sid: str) -> int:
    meta = json.loads((ctx.paths.sessions / sid / "meta.json").read_text())
    pid = meta["supervisor_pid"]
    assert isinstance(pid, int)
    return pid


def _quiet_window(pids: dict[str, int]) -> dict[str, int]:
    """The wakes of each process over the first window in which none woke more than once
    (the last window's, when none was quiet)."""
    woke: dict[str, int] = {}
    for _ in range(TRIES):
        before = {name: _wakes(pid) for name, pid in pids.items()}
        time.sleep(WINDOW_S)  # the measurement itself: how often they wake unasked
        woke = {name: _wakes(pid) - before[name] for name, pid in pids.items()}
        if max(woke.values()) <= 1:
            break
    return woke


def test_an_idle_home_wakes_no_host_and_no_supervisor_and_a_wiped_socket_is_back(
    ctx: Ctx,
) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_INTERVAL="3600")
    echo = Path(env["HOME"]) / "echo.py"
    echo.write_text(
        "import sys\nfor line in sys.stdin:\n    print('got:' + line, end='', flush=True)\n"
    )
    r = _run(env, "up")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        cmd = f"{sys.executable} {echo} # {{{{prompt_file}}}}"
        r = _run(env, "worker", "start", "w1", "work", "--command", cmd)
        assert r.returncode == 0, r.stdout + r.stderr
        pids = {
            "host": _host(ctx),
            "pulse supervisor": _supervisor(ctx, "pulse"),
            "worker supervisor": _supervisor(ctx, "w1"),
        }
        woke = _quiet_window(pids)
        assert max(woke.values()) <= 1, f"woke in {WINDOW_S:g}s at rest: {woke}"
        # a tmp cleaner takes the worker's socket: dnotify tells its supervisor, not a poll
        sock = socket_file(str(ctx.paths.data), "w1")
        os.unlink(sock)
        wait_until(lambda: os.path.exists(sock), 3, "the worker's socket bound again")
        r = _run(env, "send", "w1", "still here")
        assert r.returncode == 0, r.stdout + r.stderr
        wait_until(lambda: "got:still here" in _run(env, "shot", "w1").stdout, 20, "w1 echoing")
    finally:
        r = _run(env, "down")
    assert r.returncode == 0, r.stdout + r.stderr
