"""Talking to sessions: spawn (readiness handshake), control requests, screenshot, waits.

The requests themselves are control.py's (a connect retry that gives up early when the session
is over, and a read timeout, so a wedged supervisor can never hang a caller). Read-only
views (screenshot, log, expect, wait) work from disk when the supervisor is gone; the log
readers are in logs.py. Waits poll at <= 100 ms with a deadline from the caller's clock;
`wait` also wakes on a pidfd of the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from looop.home import control
from looop.home import protocol as proto
from looop.home.clock import Clock

# The disk readers live in logs.py; their names stay importable from here.
from looop.home.logs import MAX_TAIL_LINE as MAX_TAIL_LINE
from looop.home.logs import READ_CHUNK as READ_CHUNK
from looop.home.logs import compile_pattern, read_at, tail_log
from looop.home.logs import log_tail as log_tail
from looop.home.logs import read_log as read_log

# spawn lives in spawner.py (a start needs none of control's imports); its names stay here
from looop.sessions.spawner import READY_TIMEOUT_S as READY_TIMEOUT_S
from looop.sessions.spawner import spawn as spawn
from looop.sessions.state import (
    SessionError,
    get_session,
    wait_code,
)

LOG_POLL_S = 0.1  # follow: how often a log that stopped growing is looked at again
REPLAY_READ_MAX = 16 * 1024 * 1024  # dead screenshot: log tail scanned for modes (see screen)
EXPECT_WINDOW = 1024 * 1024  # expect keeps at most this much text to run the regex over
POLL_S = 0.05


# -- requests (control.py: plain strings, so the click-free verbs share them) --------------------


def request(root: Path, sid: str, op: str, *, timeout_s: float | None = None, **fields: Any) -> Any:
    """One control request; returns the reply's `data` or raises SessionError."""
    return control.request(str(root), sid, op, timeout_s=timeout_s, **fields)


def send(root: Path, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
    """Type into the session; `offset` is the log size before the input (for expect since)."""
    return control.send(str(root), sid, text, newline)


def send_keys(root: Path, sid: str, names: Sequence[str]) -> dict[str, Any]:
    return control.send_keys(str(root), sid, names)


def _dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def kill(root: Path, sid: str) -> dict[str, Any]:
    return _dict(request(root, sid, "kill"))


def restart(root: Path, sid: str) -> dict[str, Any]:
    """Respawn the command (same log, appended; the current size; a fresh screen)."""
    return _dict(request(root, sid, "restart"))


def resize(root: Path, sid: str, cols: int, rows: int) -> dict[str, Any]:
    return _dict(request(root, sid, "resize", cols=max(0, cols), rows=max(0, rows)))


def detach(root: Path, sid: str) -> dict[str, Any]:
    return _dict(request(root, sid, "detach"))


def live_status(root: Path, sid: str) -> dict[str, Any]:
    """The supervisor's view (adds `screen_seq`); from disk when it is gone."""
    s = get_session(root, sid)
    if s.alive:
        with contextlib.suppress(SessionError):
            return _dict(request(root, sid, "status"))
        s = get_session(root, sid)
    return {
        "v": 1,
        "state": s.state,
        "child_pid": s.child_pid,
        "exit_code": s.exit_code,
        "signaled": s.signaled,
        "last_change": s.last_change,
        "cols": s.cols,
        "rows": s.rows,
        "error": s.error,
        "output_bytes": s.output_bytes,
        "screen_seq": None,
    }


# -- screenshots --------------------------------------------------------------------------


def screenshot(root: Path, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
    """The visible screen: live from the supervisor, else replayed from the log tail at the
    last recorded size."""
    if fmt not in proto.SHOT_FORMATS:
        raise SessionError(f"unknown screenshot format `{fmt}`: use plain, ansi or json")
    shot = control.live_screenshot(str(root), sid, fmt, trim)
    if shot is not None:
        return shot
    s = get_session(root, sid)
    return replayed(tail_log(s.dir, REPLAY_READ_MAX), s.cols, s.rows, fmt, trim)


def replayed(data: bytes, cols: int, rows: int, fmt: str, trim: bool) -> dict[str, Any]:
    """The screen a log's tail draws, as a screenshot of a session that is not live."""
    # lazy: the emulator (pyte, wcwidth) loads only to replay a log, never for a live screen
    from looop.sessions.screen import render, replay

    shot = render(replay(data, cols, rows), fmt, trim)
    shot["screen_seq"] = None
    return shot


def expect(
    root: Path,
    sid: str,
    pattern: str,
    *,
    since: int | None = None,
    from_now: bool = False,
    screen: bool = False,
    raw: bool = False,
    timeout_s: float | None = 30.0,
    clock: Clock,
) -> tuple[int, str | None, int]:
    """Wait for `pattern`: (0 matched | 1 session ended first | 124 timeout, match, offset).

    Log mode reads incrementally from `since` (else the current end with `from_now`, else 0)
    and runs the regex over the text read so far, capped to its last EXPECT_WINDOW (1 MiB)
    characters — a match must fit in that window. Screen mode polls the rendered screen.
    """
    pat = compile_pattern(pattern)
    deadline = None if timeout_s is None or timeout_s <= 0 else clock.monotonic() + timeout_s
    s = get_session(root, sid)
    if screen:
        while True:
            s = get_session(root, sid)
            over = not s.alive
            shot = screenshot(root, sid, "plain", trim=True)
            m = pat.search(str(shot.get("text", "")))
            if m:
                return 0, m.group(0), s.output_bytes
            if over:
                return 1, None, s.output_bytes
            if deadline is not None and clock.monotonic() >= deadline:
                return 124, None, s.output_bytes
            time.sleep(POLL_S * 2)
    offset = since if since is not None else (s.output_bytes if from_now else 0)
    offset = max(0, offset)
    acc = ""
    while True:
        s = get_session(root, sid)
        over = not s.alive
        while True:
            text, new = read_at(s.dir, offset, raw, final=over)
            if new == offset:
                break
            offset = new
            if text:
                acc = (acc + text)[-EXPECT_WINDOW:]
                m = pat.search(acc)
                if m:
                    return 0, m.group(0), offset
        if over:
            return 1, None, offset
        if deadline is not None and clock.monotonic() >= deadline:
            return 124, None, offset
        time.sleep(POLL_S)


def wait(root: Path, sid: str, timeout_s: float | None, clock: Clock) -> int:
    """Block until the session is over: its exit code, 0 exited without one, 130 killed
    without one, 137 supervisor died without an end, 124 on timeout."""
    deadline = None if timeout_s is None or timeout_s <= 0 else clock.monotonic() + timeout_s
    pidfd = -1
    try:
        while True:
            s = get_session(root, sid)
            code = wait_code(s)
            if code is not None:
                return code
            left = None if deadline is None else deadline - clock.monotonic()
            if left is not None and left <= 0:
                return 124
            pause = 0.1 if left is None else min(0.1, left)
            if pidfd < 0 and s.supervisor_pid:
                with contextlib.suppress(OSError, AttributeError):
                    pidfd = os.pidfd_open(s.supervisor_pid)
            if pidfd >= 0:
                select.select([pidfd], [], [], pause)  # wakes at once when it exits
            else:
                time.sleep(pause)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def wait_idle(root: Path, sid: str, settle_s: float, timeout_s: float | None, clock: Clock) -> bool:
    """True once output.log has not grown for `settle_s` (or the session is over); False on
    timeout. The quiet clock starts at the call, so the minimum wait is one settle period."""
    deadline = None if timeout_s is None or timeout_s <= 0 else clock.monotonic() + timeout_s
    last = -1
    quiet_since = clock.monotonic()
    while True:
        s = get_session(root, sid)
        if not s.alive:
            return True
        now = clock.monotonic()
        if s.output_bytes != last:
            if last >= 0:
                quiet_since = now
            last = s.output_bytes
        elif now - quiet_since >= settle_s:
            return True
        if deadline is not None and now >= deadline:
            return False
        time.sleep(POLL_S)


def follow(
    root: Path, sid: str, since: int, raw: bool, out: Callable[[str], None], clock: Clock
) -> int:
    """`log -f`: print new text until the session is over; returns its wait code."""
    offset = max(0, since)
    idle_after_end = 0
    while True:
        s = get_session(root, sid)
        over = not s.alive
        text, new = read_at(s.dir, offset, raw, final=over)
        if text:
            out(text)
        if new != offset:
            offset = new
            idle_after_end = 0
            continue
        if over:
            idle_after_end += 1
            if idle_after_end >= 2:  # the log is final once the state is; one spare poll
                code = wait_code(s)
                return 0 if code is None else code
        time.sleep(LOG_POLL_S)
