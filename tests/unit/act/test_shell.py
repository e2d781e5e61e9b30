from __future__ import annotations

import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from looop.act.shell import TAIL_CHARS, run_shell
from looop.core.context import Ctx
from tests.procwatch import FIXTURES, Zombies, kill_all, tagged

pytestmark = pytest.mark.process  # real processes: not make check's tier


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(10)
def test_success_runs_in_data_dir_with_child_env(ctx: Ctx) -> None:
    r = run_shell(ctx, 'pwd; echo "data=$LOOOP_DATA_DIR"; echo oops >&2; read x; echo "in=$x"', 10)
    assert r.exit_code == 0 and not r.timed_out
    lines = r.stdout.splitlines()
    assert Path(lines[0]).resolve() == ctx.paths.data.resolve()
    assert lines[1] == f"data={ctx.paths.data}"
    assert lines[2] == "in="  # stdin is /dev/null
    assert r.stderr == "oops\n"
    assert r.secs >= 0


@pytest.mark.timeout(10)
def test_failure_exit_code_and_signal_death(ctx: Ctx) -> None:
    assert run_shell(ctx, "echo bad >&2; exit 3", 10).exit_code == 3
    assert run_shell(ctx, "kill -TERM $$", 10).exit_code == 128 + signal.SIGTERM


@pytest.mark.timeout(20)
def test_timeout_kills_the_whole_group(ctx: Ctx) -> None:
    pidfile = ctx.paths.data / "grandchild.pid"
    t0 = time.monotonic()
    r = run_shell(ctx, f"echo started; sleep 60 & echo $! > {pidfile}; wait", 1.0)
    took = time.monotonic() - t0
    assert r.timed_out
    assert r.exit_code is None
    assert r.stdout == "started\n"
    assert 0.9 <= took < 5
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(grandchild), "background grandchild survived the deadline"


@pytest.mark.timeout(20)
def test_backgrounded_daemon_does_not_hold_the_command_open(ctx: Ctx) -> None:
    pidfile = ctx.paths.data / "bg.pid"
    t0 = time.monotonic()
    r = run_shell(ctx, f"sleep 30 & echo $! > {pidfile}; echo done", 10)
    assert r.exit_code == 0 and not r.timed_out
    assert r.stdout == "done\n"
    assert time.monotonic() - t0 < 5
    assert not _alive(int(pidfile.read_text())), "the daemon outlived its command"
    assert "killed 1 background process(es)" in r.stderr


@pytest.mark.timeout(30)
def test_chatty_command_keeps_only_a_bounded_tail(ctx: Ctx) -> None:
    tracemalloc.start()
    try:
        r = run_shell(ctx, "head -c 20000000 /dev/zero | tr '\\0' x; printf END; echo e >&2", 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.exit_code == 0
    assert len(r.stdout) == TAIL_CHARS
    assert r.stdout.endswith("xxxEND")
    assert r.stderr == "e\n"
    assert peak < 2_000_000, f"peak Python memory {peak} bytes for 20 MB of output"


@pytest.mark.timeout(10)
def test_non_utf8_output_is_decoded_lossily(ctx: Ctx) -> None:
    r = run_shell(ctx, "printf 'ok \\377\\376 end'", 10)
    assert r.exit_code == 0
    assert r.stdout.startswith("ok ") and r.stdout.endswith(" end")
    assert "\ufffd" in r.stdout


# ------------------------------------------------------------------ containment

ESCAPEES = (
    "setsid sleep 1000 >/dev/null 2>&1 </dev/null & "
    f'"{sys.executable}" "{FIXTURES / "escape.py"}" doublefork; '
    f'"{sys.executable}" "{FIXTURES / "escape.py"}" pgrp; '
    f'"{sys.executable}" "{FIXTURES / "escape.py"}" chain; '
)


@pytest.mark.timeout(60)
def test_nothing_the_command_starts_outlives_it_run_after_run(ctx: Ctx, zombies: Zombies) -> None:
    mine = str(ctx.paths.data)
    try:
        for _ in range(3):
            r = run_shell(ctx, ESCAPEES + "echo fine", 30)
            assert r.exit_code == 0 and not r.timed_out
            assert r.stdout == "fine\n"
            assert tagged("LOOOP_DATA_DIR", mine) == []
            assert zombies() == []
        # setsid sleep, the double-forked daemon, the grouped one, and both of the chain
        assert "killed 5 background process(es)" in r.stderr
    finally:
        kill_all(tagged("LOOOP_DATA_DIR", mine))


@pytest.mark.timeout(60)
def test_a_timed_out_command_takes_its_escapees_with_it(ctx: Ctx, zombies: Zombies) -> None:
    mine = str(ctx.paths.data)
    try:
        r = run_shell(ctx, ESCAPEES + "echo waiting; sleep 1000", 2)
        assert r.timed_out and r.stdout == "waiting\n"
        assert tagged("LOOOP_DATA_DIR", mine) == []
        assert zombies() == []
    finally:
        kill_all(tagged("LOOOP_DATA_DIR", mine))


@pytest.mark.timeout(30)
def test_a_quiet_command_is_untouched(ctx: Ctx) -> None:
    r = run_shell(ctx, "echo ok", 10)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "ok\n", "")


@pytest.mark.timeout(30)
def test_without_prctl_the_command_still_runs_and_says_so_once(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.core import procs

    monkeypatch.setattr(procs, "_prctl", lambda option, arg: None)  # as on a non-Linux kernel
    assert run_shell(ctx, "echo ok", 10).stdout == "ok\n"
    assert run_shell(ctx, "echo ok", 10).exit_code == 0
    warned = [f for name, f in ctx.events.seen if name == "shell.uncontained"]
    assert len(warned) == 1 and warned[0]["level"] == "warn"
