"""A line typed with Enter is submitted even when the worker reads late: Enter goes only once
the text shows on the worker's screen, so a TUI that takes text+CR in one read as a paste
(tests/fixtures/paste_tui.py) still gets its CR in a read of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.clock import SystemClock
from looop.home.sandboxpolicy import OFF
from looop.sessions.client import ECHO_WAIT_S, expect, request, send
from looop.sessions.logs import log_tail
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import clean_env, kill_sessions, stop_sessions, wire

pytestmark = pytest.mark.timeout(60)

TUI = [sys.executable, str(Path(__file__).resolve().parent.parent / "fixtures" / "paste_tui.py")]
LINE = "fix the red test now"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "data"
    r.mkdir()
    yield r
    kill_sessions(r)


def _spawn(root: Path, sid: str, argv: list[str]) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root.parent), "LANG": "C.UTF-8"}
    spawn(root, sid, argv, cwd=root, env=env)


def _seen(root: Path, sid: str, pattern: str, timeout_s: float = 15) -> bool:
    code, _, _ = expect(root, sid, pattern, timeout_s=timeout_s, clock=FixedClock())
    return code == 0


def _cli_send(root: Path) -> Callable[[], object]:
    argv = [sys.executable, "-m", "looop", "send", "tui", *LINE.split()]
    env = clean_env(root.parent, root)
    return lambda: subprocess.run(argv, env=env, capture_output=True, timeout=30, check=True)


def _typed_while_stopped(root: Path, typing: Callable[[], object]) -> None:
    """Type the line while the worker's reader is stopped (so whatever was written by then
    arrives in one read), let it go on, and wait for the typing to finish."""
    pid = get_session(root, "tui").child_pid
    assert pid
    os.kill(pid, signal.SIGSTOP)
    job = threading.Thread(target=typing)
    try:
        job.start()
        job.join(0.5)  # today's two writes are both done by now; Enter must not be
    finally:
        os.kill(pid, signal.SIGCONT)
    job.join(20)
    assert not job.is_alive()


@pytest.mark.parametrize("way", ["client", "cli"])
def test_a_line_typed_while_the_worker_reads_late_is_submitted(root: Path, way: str) -> None:
    _spawn(root, "tui", TUI)
    assert _seen(root, "tui", "READY")
    typing = _cli_send(root) if way == "cli" else lambda: send(root, "tui", LINE + "\r", False)
    _typed_while_stopped(root, typing)
    assert _seen(root, "tui", f"SUBMITTED:{LINE}"), log_tail(root, "tui", 10)
    assert "PASTED" not in log_tail(root, "tui", 20)


def test_a_decisions_steer_is_submitted_while_the_worker_reads_late(ctx: Ctx) -> None:
    """steer_session (the web's and MCP's typing with Enter too) through the executor."""
    wire(ctx, [], worker=" ".join([*TUI, "# {{prompt_file}}"]))
    root = ctx.paths.data
    try:
        start_worker(ctx, ctx.knobs(), StartRequest("tui", "x", sandbox=OFF))
        assert _seen(root, "tui", "READY")
        steer = decision_from_obj({"action": "steer_session", "id": "tui", "input": LINE})
        _typed_while_stopped(root, lambda: execute(ctx, ctx.knobs(), steer))
        assert _seen(root, "tui", f"SUBMITTED:{LINE}"), log_tail(root, "tui", 10)
    finally:
        stop_sessions(root)


def test_a_program_that_never_echoes_still_gets_its_enter(root: Path) -> None:
    _spawn(root, "quiet", ["/bin/sh", "-c", "stty -echo; read x; echo GOT:$x"])
    reply = send(root, "quiet", "no echo here\r", False)
    assert reply["sent"] == len("no echo here\r")
    assert _seen(root, "quiet", "GOT:no echo here")


def _echo(root: Path, sid: str, tail: str, offset: int, timeout: float) -> tuple[bool, float]:
    """The supervisor's `echo` answer and how long it took."""
    clock = SystemClock()
    t0 = clock.monotonic()
    got = request(str(root), sid, "echo", timeout_s=timeout + 5, tail=tail, offset=offset,
                  timeout=timeout)  # fmt: skip
    return bool(got["echoed"]), clock.monotonic() - t0


def test_the_supervisor_answers_echo_when_the_line_shows_and_not_before(root: Path) -> None:
    _spawn(root, "cat", ["/bin/cat"])
    sent = send(root, "cat", "shown soon", False)
    echoed, took = _echo(root, "cat", "shownsoon", int(sent["offset"]), 10.0)
    assert echoed and took < 5.0  # woken by the output, not at the timeout
    never, took = _echo(root, "cat", "nevertyped", int(sent["offset"]), 0.5)
    assert not never and took >= 0.5


def test_an_echo_wait_ends_when_the_session_does(root: Path) -> None:
    _spawn(root, "brief", ["/bin/sh", "-c", "stty -echo; sleep 0.5"])
    echoed, took = _echo(root, "brief", "notshown", 0, 8.0)
    assert not echoed and took < 6.0


def test_a_silent_programs_enter_comes_after_the_echo_wait(root: Path) -> None:
    """`stty -echo`: the Enter waits the whole ECHO_WAIT_S, then goes: the line is read."""
    _spawn(root, "quiet", ["/bin/sh", "-c", "stty -echo; echo READY; read x; echo GOT:$x"])
    assert _seen(root, "quiet", "READY")
    clock = SystemClock()
    t0 = clock.monotonic()
    send(root, "quiet", "said unseen\r", False)
    assert clock.monotonic() - t0 >= ECHO_WAIT_S * 0.9
    assert _seen(root, "quiet", "GOT:said unseen")


def test_a_line_typed_into_gemini_waits_out_its_fast_return_window(
    root: Path, tmp_path: Path
) -> None:
    """gemini takes an Enter read within 30 ms of the last typed key as a newline: its
    profile's gap holds the Enter that long after the echo, however fast the echo came."""
    gemini = tmp_path / "bin" / "gemini"  # the stand-in under gemini's name, as a line runs it
    gemini.parent.mkdir()
    gemini.write_text(f"#!/bin/sh\nFAST_RETURN_MS=30 exec {' '.join(TUI)}\n")
    gemini.chmod(0o755)
    _spawn(root, "tui", [str(gemini)])
    assert _seen(root, "tui", "READY")
    for n in range(5):  # each one alone could fall outside the window by luck
        send(root, "tui", f"{LINE} {n}\r", False)
        assert _seen(root, "tui", f"SUBMITTED:{LINE} {n}"), log_tail(root, "tui", 10)
    assert "NEWLINE" not in log_tail(root, "tui", 40)
