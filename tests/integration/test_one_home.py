"""One home, one pulse, as real processes: a data dir removed or replaced under a live pulse
stops it (never a re-seeded default config beaten on unseen), `up` refuses while a pulse of
the home still runs on the lost data dir, and `down` finds that pulse and its workers through
the runtime dir alone."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import homes
from looop.sessions.state import get_session
from tests.helpers import await_event, clean_env, wire

pytestmark = pytest.mark.timeout(120)


def _env(ctx: Ctx, interval: int, **extra: str) -> dict[str, str]:
    return clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_INTERVAL=str(interval), **extra)


def _looop(ctx: Ctx, *args: str, interval: int = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env=_env(ctx, interval),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _pulses(ctx: Ctx) -> list[int]:
    """The live pulses of this home, as the runtime dir's registry knows them."""
    return sorted(
        r["pid"] for r in homes.live(os.environ["LOOOP_RUNTIME_DIR"], str(ctx.paths.data))
    )


def _exits(pid: int, secs: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], secs)[0])
    finally:
        os.close(fd)


def _up_pid(r: subprocess.CompletedProcess[str]) -> int:
    assert r.returncode == 0, r.stderr
    m = re.search(r"pulse (?:started|already running) \(pid (\d+)\)", r.stdout)
    assert m, r.stdout
    return int(m.group(1))


def _rm_rf(path: Path) -> None:
    """`rm -rf` under live writers: a file they create meanwhile makes one pass fail."""
    for _ in range(100):
        try:
            shutil.rmtree(path)
            return
        except OSError:  # ENOTEMPTY, or ENOENT for an entry renamed away mid-walk
            if not os.path.lexists(path):
                return
    raise AssertionError(f"could not remove {path}")


def _settled(ctx: Ctx, wid: str) -> None:
    """The pulse woke for the worker's start, beat and sleeps again: no beat is left to run
    (a later one would find its home moved and end, as the test above shows)."""
    deadline = time.monotonic() + 30
    sessions = ctx.paths.snapshots / "sys-sessions.json"
    while time.monotonic() < deadline:
        lines = ctx.paths.events.read_text().splitlines()
        last = json.loads(lines[-1])["event"] if lines else None
        if last == "pulse_sleep" and sessions.exists() and wid in sessions.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"the pulse never slept after seeing {wid}")


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), rename_exchange) != 0:
        raise OSError(ctypes.get_errno(), f"renameat2 {a} <-> {b}")


def _down(ctx: Ctx) -> None:
    _looop(ctx, "down")


def test_removing_the_data_dir_stops_the_pulse_and_a_later_up_starts_one(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    try:
        pid = _up_pid(_looop(ctx, "up", interval=1))
        assert _pulses(ctx) == [pid]
        _rm_rf(ctx.paths.data)
        assert _exits(pid, 15), "the pulse beat on without its data dir"
        assert _pulses(ctx) == []
        # it did not seed a default config (nor anything else) into the path on its way out
        assert not ctx.paths.config.exists()
        ctx.paths.data.mkdir(parents=True, exist_ok=True)  # the user's new home, configured
        wire(ctx, [{"decision": {"action": "noop"}}])
        again = _up_pid(_looop(ctx, "up", interval=1))
        assert again != pid and _pulses(ctx) == [again]
        assert _up_pid(_looop(ctx, "up")) == again  # up twice: still exactly one pulse
        assert _pulses(ctx) == [again]
    finally:
        _down(ctx)
    assert _pulses(ctx) == []


def test_a_pulse_whose_data_dir_is_replaced_says_why_and_stops(ctx: Ctx, tmp_path: Path) -> None:
    wire(ctx, [{"decision": {"action": "noop"}}])
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "pulse"],
        env=_env(ctx, 1, LOOOP_LOG_FORMAT="json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep")
        # swapped with a new home in one step (renameat2 RENAME_EXCHANGE): a pulse woken by
        # its watched folders never finds the path missing between a rename and a mkdir
        (tmp_path / "new-home").mkdir()
        _exchange(tmp_path / "new-home", ctx.paths.data)
        ev = await_event(p.stdout, "pulse.home_lost")
        assert f"data dir {ctx.paths.data} was replaced" in ev["msg"]
        assert p.wait(timeout=15) == 3
        # the new data dir holds the event, no beat and nothing seeded: no config, no pid file
        names = [json.loads(ln)["event"] for ln in ctx.paths.events.read_text().splitlines()]
        assert names[-1] == "pulse_home_lost" and "tick_start" not in names
        assert not ctx.paths.config.exists() and not ctx.paths.pid_file.exists()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


def test_a_removed_data_dir_ends_its_pulse_at_once_and_down_stops_its_workers(
    ctx: Ctx,
) -> None:
    """The pulse watches its home's folders: their removal wakes it however long its interval,
    it finds its home lost and ends; the worker it leaves behind is stopped by `down`."""
    wire(ctx, [{"decision": {"action": "noop"}}])
    try:
        pid = _up_pid(_looop(ctx, "up"))  # an hour's idle beat: only a wake makes it look
        r = _looop(ctx, "worker", "start", "w1", "work", "--command", "sleep 600 # {{prompt_file}}")
        assert r.returncode == 0, r.stderr
        child = get_session(ctx.paths.data, "w1").child_pid
        assert isinstance(child, int)
        _settled(ctx, "w1")
        _rm_rf(ctx.paths.data)
        assert _exits(pid, 15), "the pulse kept beating on a removed data dir"
        r = _looop(ctx, "up")
        assert r.returncode != 0 and "no config" in r.stderr and not ctx.paths.config.exists()
        r = _looop(ctx, "down")
        assert r.returncode == 0, r.stderr
        assert f"stopped 1 worker(s) of a removed or replaced data dir (pid {child})" in r.stdout
        assert _pulses(ctx) == []
        assert _exits(child, 10), "the worker outlived `down`"
        wire(ctx, [{"decision": {"action": "noop"}}])
        again = _up_pid(_looop(ctx, "up"))
        assert _pulses(ctx) == [again]
    finally:
        _down(ctx)


def _supervisor_of(pid: int) -> int:
    """The pulse's parent: its session supervisor."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_up_refuses_while_a_pulse_of_the_removed_home_still_runs(ctx: Ctx) -> None:
    """A pulse that cannot notice its home is gone (stopped, as by a debugger or a frozen
    cgroup) still holds the home: `up` on the new data dir refuses, naming it and what to
    do, and writes nothing; `down` stops it, and then `up` starts the one pulse."""
    wire(ctx, [{"decision": {"action": "noop"}}])
    held: list[int] = []
    try:
        pid = _up_pid(_looop(ctx, "up"))
        _settled(ctx, "")  # asleep: no beat of its own is left to notice the removal
        stopped = [_supervisor_of(pid), pid]
        # held by pidfd: the cleanup below never signals a pid reused by another process
        held = [os.pidfd_open(p) for p in stopped]
        for p in stopped:  # its supervisor too, or its watchdog would end it as hung
            os.kill(p, signal.SIGSTOP)
        _rm_rf(ctx.paths.data)
        ctx.paths.data.mkdir(parents=True)
        r = _looop(ctx, "up")
        assert r.returncode != 0
        assert f"a pulse of {ctx.paths.data} is still running (pid {pid})" in r.stderr
        assert "`looop down`" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert list(ctx.paths.data.iterdir()) == []  # a refused `up` writes nothing
        r = _looop(ctx, "down")
        assert r.returncode == 0, r.stderr
        assert _exits(pid, 15), "the stopped pulse outlived `down`"
        assert _pulses(ctx) == []
        wire(ctx, [{"decision": {"action": "noop"}}])
        again = _up_pid(_looop(ctx, "up"))
        assert again != pid and _pulses(ctx) == [again]
    finally:
        for fd in held:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGCONT)
        _down(ctx)
        for fd in held:  # the removed home's supervisor: no `down` of the new one knows it
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
    assert _pulses(ctx) == []
