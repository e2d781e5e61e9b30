"""Talking to sessions: spawn (readiness handshake), control requests, screenshot, waits.

Every request retries its connect briefly, giving up at once when the session is over, and
has a read timeout, so a wedged supervisor never hangs a caller. A line typed with Enter is
submitted here, for every way of typing one (`send`). Read-only
views (screenshot, log, expect, wait) work from disk when the supervisor is gone; the log
readers are in logs.py. Waits poll at <= 100 ms with a deadline from the caller's clock;
`wait` also wakes on a pidfd of the supervisor.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import select
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from looop.home import logfiles
from looop.home.clock import Clock
from looop.home.sessionfiles import LIVE_NAMES, get_light, live, socket_file
from looop.sessions import protocol as proto
from looop.sessions.keys import encode_keys
from looop.sessions.logs import compile_pattern, read_at
from looop.sessions.state import SessionError, get_session, wait_code

if TYPE_CHECKING:
    from looop.home.store import AnyPath

LOG_POLL_S = 0.1  # follow: how often a log that stopped growing is looked at again
REPLAY_READ_MAX = 16 * 1024 * 1024  # dead screenshot: log tail scanned for modes (see screen)
EXPECT_WINDOW = 1024 * 1024  # expect keeps at most this much text to run the regex over
POLL_S = 0.05


# -- requests: a connect retried briefly (never once the session is over), a read timeout --

# x CONNECT_PAUSE_S: ~4 s for a supervisor that is still binding, or binding again after
# its socket was removed (dnotify tells it: sessions/control.SocketWatch)
CONNECT_TRIES = 100
CONNECT_PAUSE_S = 0.04
OP_TIMEOUT_S = {"kill": 20.0, "restart": 20.0, "screenshot": 15.0}
DEFAULT_OP_TIMEOUT_S = 10.0

# a line typed with Enter: how long its text may take to show before Enter goes anyway, how
# much of the line's end must show
ECHO_WAIT_S = 2.0
ECHO_TAIL = 12

INPUT_OPS = frozenset({"send", "resize", "detach"})


def _over_error(s: dict[str, Any], op: str) -> SessionError:
    """Why a request cannot reach a session that is not running (get_light's dict)."""
    sid = s["id"]
    if s["state"] in LIVE_NAMES:
        return SessionError(f"session {sid} is not running (its supervisor is gone)")
    if op in INPUT_OPS:
        return SessionError(f"session {sid} has already finished — it no longer accepts input")
    return SessionError(f"session {sid} has already finished")


def connect(root: AnyPath, sid: str, op: str) -> socket.socket:
    """Connect, retrying briefly; stops at once when the session is over (never trusts the
    socket of a session whose lock is free)."""
    path = socket_file(str(root), sid)
    for _ in range(CONNECT_TRIES):
        s = get_light(str(root), sid)
        if not s["alive"]:
            raise _over_error(s, op)
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(2.0)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
            sock.close()
        time.sleep(CONNECT_PAUSE_S)
    raise SessionError(f"session {sid} is not answering on its control socket; try again")


def request(
    root: AnyPath, sid: str, op: str, *, timeout_s: float | None = None, **fields: Any
) -> Any:
    """One control request; returns the reply's `data` or raises SessionError."""
    line = proto.request_line(op, **fields)
    if len(line) > proto.MAX_LINE:
        raise SessionError(f"request too large for session {sid} (max {proto.MAX_LINE} bytes)")
    wait = timeout_s if timeout_s is not None else OP_TIMEOUT_S.get(op, DEFAULT_OP_TIMEOUT_S)
    sock = connect(root, sid, op)
    try:
        sock.settimeout(wait)
        sock.sendall(line)
        buf = proto.read_reply(sock)
    except TimeoutError as e:
        raise SessionError(
            f"session {sid} did not answer `{op}` within {wait:g}s (its supervisor may be stuck)"
        ) from e
    except ValueError as e:
        raise SessionError(f"session {sid} sent an oversized reply to `{op}`") from e
    except OSError:
        buf = b""
    finally:
        sock.close()
    if b"\n" not in buf:
        s = get_light(str(root), sid)
        if not s["alive"]:
            raise _over_error(s, op)
        raise SessionError(f"session {sid} closed the connection during `{op}`; try again")
    reply = proto.reply_of(buf)
    if reply is None:
        raise SessionError(f"session {sid} sent an unreadable reply to `{op}`")
    if not reply.get("ok"):
        raise SessionError(str(reply.get("error") or f"session {sid} refused `{op}`"))
    return reply.get("data")


def send(root: AnyPath, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
    """Type into the session; `offset` is the log size before the input (for expect since).

    Input that ends in Enter (CR) after something visible is submitted in two writes: the
    text, then Enter once the text shows on the worker's screen (at most ECHO_WAIT_S; a
    program that does not echo gets its Enter then). An agent TUI that reads text and CR in
    one read takes the CR as part of a paste and never submits the line — two writes alone
    can still arrive in one read on a loaded machine. Every way of typing a line (`looop send`,
    steer_session, the web, MCP, a remote worker's far end) comes through here."""
    tail = _echo_tail(text) if not newline else ""
    if not tail:
        return _send_once(root, sid, text, newline)
    first = _send_once(root, sid, text[:-1], False)
    _await_echo(root, sid, tail, int(first.get("offset") or 0))
    enter = _send_once(root, sid, "\r", False)
    return {**first, "sent": int(first.get("sent") or 0) + int(enter.get("sent") or 0)}


def _send_once(root: AnyPath, sid: str, text: str | bytes, newline: bool) -> dict[str, Any]:
    if isinstance(text, bytes):
        fields: dict[str, Any] = {"data_b64": base64.b64encode(text).decode("ascii")}
    else:
        fields = {"text": text}
    return _dict(request(root, sid, "send", newline=newline, **fields))


def _echo_tail(text: str | bytes) -> str:
    """The last few visible characters typed before a final CR; "" when there is no final
    CR or nothing visible before it (a bare Enter, a control key): then one write."""
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if not said.endswith("\r"):
        return ""
    last = said[:-1].replace("\r", "\n").split("\n")[-1]
    shown = "".join(c for c in last if c.isprintable() and not c.isspace())
    return shown[-ECHO_TAIL:]


def _await_echo(root: AnyPath, sid: str, tail: str, offset: int) -> None:
    """Until the worker wrote output after `offset` and its screen shows `tail`, at most
    ECHO_WAIT_S: one request the supervisor answers when its output shows it
    (sessions/control.await_echo). Over or not answering: the Enter's own request says so."""
    wait = ECHO_WAIT_S + 2.0  # the supervisor answers at ECHO_WAIT_S: a margin to say so
    with contextlib.suppress(SessionError):
        request(root, sid, "echo", timeout_s=wait, tail=tail, offset=offset, timeout=ECHO_WAIT_S)


def send_keys(root: AnyPath, sid: str, names: Sequence[str]) -> dict[str, Any]:
    """Named keys (keys.py), every name checked before anything is sent."""
    return send(root, sid, encode_keys(names), newline=False)


def _dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def kill(root: AnyPath, sid: str) -> dict[str, Any]:
    return _dict(request(root, sid, "kill"))


def restart(root: AnyPath, sid: str) -> dict[str, Any]:
    """Respawn the command (same log, appended; the current size; a fresh screen)."""
    return _dict(request(root, sid, "restart"))


def resize(root: AnyPath, sid: str, cols: int, rows: int) -> dict[str, Any]:
    return _dict(request(root, sid, "resize", cols=max(0, cols), rows=max(0, rows)))


def detach(root: AnyPath, sid: str) -> dict[str, Any]:
    return _dict(request(root, sid, "detach"))


# -- screenshots --------------------------------------------------------------------------


def screenshot(root: AnyPath, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
    """The visible screen: live from the supervisor, else replayed from the log tail at the
    last recorded size."""
    if fmt not in proto.SHOT_FORMATS:
        raise SessionError(f"unknown screenshot format `{fmt}`: use plain, ansi or json")
    if live(str(root), sid):
        try:
            return _dict(request(root, sid, "screenshot", format=fmt, trim=trim))
        except SessionError:
            if live(str(root), sid):
                raise
    s = get_session(root, sid)
    return replayed(logfiles.tail(s.dir, REPLAY_READ_MAX), s.cols, s.rows, fmt, trim)


def replayed(data: bytes, cols: int, rows: int, fmt: str, trim: bool) -> dict[str, Any]:
    """The screen a log's tail draws, as a screenshot of a session that is not live."""
    # lazy: the emulator (avt, ~5 ms) loads only to replay a log, never for a live screen
    from looop.sessions.screen import render, replay

    shot = render(replay(data, cols, rows), fmt, trim)
    shot["screen_seq"] = None
    return shot


def expect(
    root: AnyPath,
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
    offset = max(0, since if since is not None else (s.output_bytes if from_now else 0))
    acc = ""
    while True:
        s = get_session(root, sid)
        over = not s.alive
        m: re.Match[str] | None = None
        if screen:
            m = pat.search(str(screenshot(root, sid, "plain", trim=True).get("text", "")))
            offset = s.output_bytes
        while m is None and not screen:
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
        time.sleep(POLL_S * 2 if screen else POLL_S)


def wait(root: AnyPath, sid: str, timeout_s: float | None, clock: Clock) -> int:
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


def wait_idle(
    root: AnyPath, sid: str, settle_s: float, timeout_s: float | None, clock: Clock
) -> bool:
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
    root: AnyPath, sid: str, since: int, raw: bool, out: Callable[[str], None], clock: Clock
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
