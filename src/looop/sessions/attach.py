"""Interactive attach client: put the local terminal in raw mode and speak attach frames.

Detach with Ctrl-\\ pressed twice (legacy byte, Kitty CSI-u or xterm modifyOtherKeys form).
The worker's output passes sessions.termgate on its way to the terminal (clipboard writes,
titles and echoing queries dropped) unless the human asks for `passthrough`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import math
import os
import select
import signal
import socket
import sys
import termios
import time
import tty
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.home.errors import LooopError
from looop.home.logfiles import open_view
from looop.sessions import protocol
from looop.sessions.client import connect
from looop.sessions.detachkey import DEFAULT_KEYS, DetachFilter, Key, parse_keys
from looop.sessions.state import (
    Session,
    SessionError,
    get_session,
    typed_mark,
    wait_code,
)
from looop.sessions.termgate import TermGate

# ---- attach frames (sessions §1.8) -------------------------------------------------------------

_LOST_GRACE_S = 1.0  # how long a dropped connection may wait for the session's final status
_LOST_POLL_S = 0.05
_READ_CHUNK = 4096
_LOG_CHUNK = 1 << 16

#: Undo what a still-running program may have switched on in our terminal (sessions §1.13).
CLEANUP = (
    b"\x1b[?1049l"  # leave the alternate screen
    b"\x1b[?25h"  # show the cursor
    b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"  # mouse reporting
    b"\x1b[?2004l"  # bracketed paste
    b"\x1b[?1004l"  # focus events
    b"\x1b[<u"  # pop the Kitty keyboard flags the program pushed
    b"\x1b[0m"  # reset colours and attributes
    b"\x0f\x1b(B"  # back to the ASCII charset (SI, G0 = ASCII): no line-drawing glyphs left
    b"\r"
)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until everything is out, waiting if the fd happens to be non-blocking."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def _terminal_size(*fds: int) -> tuple[int, int]:
    for fd in fds:
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        if size.columns > 0 and size.lines > 0:
            return min(size.columns, 0xFFFF), min(size.lines, 0xFFFF)
    return 80, 24


class _Terminal:
    """Raw mode on a TTY stdin, restored exactly once on whatever path we leave by."""

    def __init__(self, stdin_fd: int, stdout_fd: int) -> None:
        self._in = stdin_fd
        self._out = stdout_fd
        self._saved: list[Any] | None = None

    def enter_raw(self) -> None:
        if not os.isatty(self._in):
            return
        self._saved = termios.tcgetattr(self._in)
        atexit.register(self.restore)
        # TCSANOW, not setraw's default TCSAFLUSH: keys typed before we got here still go through.
        tty.setraw(self._in, termios.TCSANOW)

    def restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        atexit.unregister(self.restore)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self._in, termios.TCSADRAIN, saved)

    def cleanup(self) -> None:
        """Reset modes the program left on; only a terminal is sent escape sequences."""
        if os.isatty(self._out):
            with contextlib.suppress(OSError):
                _write_all(self._out, CLEANUP)


@dataclass(frozen=True)
class _End:
    """Why the attach loop stopped."""

    why: str  # exit | detached | detach | lost | signal | stdout
    code: int = 0  # what `attach` returns for exit, signal (128 + it) and stdout


class _Out:
    """The local terminal's side of the stream: every byte the worker printed goes through the
    gate (None: passthrough, the bytes as printed)."""

    def __init__(self, fd: int, gate: TermGate | None) -> None:
        self.fd = fd
        self.gate = gate

    def write(self, data: bytes) -> None:
        _write_all(self.fd, data if self.gate is None else self.gate.feed(data))

    def end(self) -> None:
        if self.gate is not None:
            _write_all(self.fd, self.gate.flush())


def _replay_log(session: Session, out: _Out) -> int:
    """A finished session: print its whole transcript and report its exit code."""
    with open_view(session.dir) as view:  # every file of the run kept, across rotation
        at = view.start
        while chunk := view.read(at, _LOG_CHUNK):
            out.write(chunk)
            at += len(chunk)
    out.end()
    return wait_code(session) or 0  # its own, 130 when killed, 137 when its owner died


def _connect(root: Path | str, sid: str) -> socket.socket | None:
    """Open the control socket (sessions/client.connect); None when the session finished
    meanwhile."""
    try:
        sock = connect(root, sid, "attach")
    except SessionError:
        if not get_session(root, sid).alive:
            return None
        raise
    sock.settimeout(None)
    return sock


def _refusal(line: bytes, sid: str) -> str:
    reply = protocol.reply_of(line)
    if reply is not None and isinstance(reply.get("error"), str):
        return f"session `{sid}` refused to attach: {reply['error']}"
    return f"session `{sid}` answered the attach request with something other than frames"


class _Attached:
    """One live attachment: stdin -> filter -> INPUT, SIGWINCH -> RESIZE, frames -> stdout."""

    def __init__(
        self, sock: socket.socket, stdin_fd: int, out: _Out, sid: str, keys: tuple[Key, ...]
    ) -> None:
        self.sock, self.stdin_fd, self.out, self.sid = sock, stdin_fd, out, sid
        self.filter = DetachFilter(keys)
        self.buf = bytearray()
        self.framed = False  # a frame came: no JSON refusal any more

    def send(self, frame: bytes) -> None:
        with contextlib.suppress(OSError):  # the session gone: its frames say so
            self.sock.sendall(frame)

    def run(self, wake: int) -> _End:
        """Until the session ends, detaches or the connection is lost; `wake` is told of
        signals."""
        poll = select.poll()
        for fd in (self.sock.fileno(), wake, self.stdin_fd):
            poll.register(fd, select.POLLIN)
        while True:
            deadline = self.filter.deadline
            wait = (
                None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1e3))
            )
            for fd, _ in poll.poll(wait):
                if fd == wake:
                    end = self.on_signals(wake)
                elif fd == self.stdin_fd:
                    end = self.on_stdin(poll)
                else:
                    end = self.on_frames()
                if end is not None:
                    return end
            self.forward(self.filter.flush_pending(time.monotonic()))

    def on_signals(self, wake: int) -> _End | None:
        for signum in os.read(wake, 256):
            if signum == signal.SIGWINCH:
                self.send(protocol.resize_frame(*_terminal_size(self.stdin_fd, self.out.fd)))
            elif signum in _STOP_SIGNALS:
                return _End("signal", 128 + signum)
        return None

    def on_stdin(self, poll: select.poll) -> _End | None:
        """Forward one read of stdin; at its end, stop reading it."""
        try:
            data = os.read(self.stdin_fd, _READ_CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            poll.unregister(self.stdin_fd)
            self.forward(self.filter.flush_pending(float("inf")))
            return None
        out, detach = self.filter.feed(data, time.monotonic())
        self.forward(out)
        return _End("detach") if detach else None

    def forward(self, data: bytes) -> None:
        if data:
            self.send(protocol.frame(protocol.INPUT, data))

    def on_frames(self) -> _End | None:
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        buf = self.buf
        buf += data
        if not self.framed and buf[:1] == b"{":
            # The supervisor refused the attach with a JSON error line instead of frames.
            if b"\n" in buf or not data:
                raise SessionError(_refusal(bytes(buf).split(b"\n", 1)[0], self.sid))
            return None
        head = protocol.HEADER.size
        while len(buf) >= head:
            tag, length = protocol.HEADER.unpack_from(buf)
            if length > protocol.MAX_REPLY:  # not frames at all: treat as a broken stream
                return _End("lost")
            if len(buf) < head + length:
                break
            payload = bytes(buf[head : head + length])
            del buf[: head + length]
            self.framed = True
            end = self.on_frame(tag, payload)
            if end is not None:
                return end
        return None if data else _End("lost")

    def on_frame(self, tag: int, payload: bytes) -> _End | None:
        if tag == protocol.OUTPUT:
            try:
                self.out.write(payload)
            except OSError:
                return _End("stdout", 1)
        elif tag == protocol.EXIT:
            if len(payload) < protocol.EXIT_BODY.size:
                return _End("exit", 130)  # an end we cannot read counts as signaled
            return _End("exit", protocol.parse_exit(payload)[1])
        elif tag == protocol.DETACHED:
            return _End("detached")
        return None  # unknown tags are skipped so a newer supervisor can add frames


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_ROUTED = (signal.SIGWINCH, *_STOP_SIGNALS)


def _route_signals(wake: int) -> Callable[[], None]:
    """SIGWINCH, SIGTERM and SIGHUP told on `wake`; returns what puts them back (off the
    main thread nothing is routed)."""
    try:
        old_fd = signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    except ValueError:
        return lambda: None
    saved = [(sig, signal.signal(sig, lambda _n, _f: None)) for sig in _ROUTED]

    def restore() -> None:
        for sig, previous in saved:
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(old_fd)

    return restore


def _attach_live(
    root: Path | str, sid: str, stdin_fd: int, out: _Out, keys: tuple[Key, ...]
) -> _End | None:
    sock = _connect(root, sid)
    if sock is None:
        return None
    att = _Attached(sock, stdin_fd, out, sid, keys)
    cols, rows = _terminal_size(stdin_fd, out.fd)
    att.send(protocol.request_line("attach", cols=cols, rows=rows))
    term = _Terminal(stdin_fd, out.fd)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    restore = _route_signals(wake_w)
    end: _End | None = None
    try:
        term.enter_raw()
        end = att.run(wake_r)
        return end
    finally:
        with contextlib.suppress(OSError):
            out.end()  # an unfinished sequence at the end is dropped, not left half-sent
        term.restore()
        # A program that exited tore its modes down itself (and a second ?1049l would move the
        # cursor); one we leave running, or an error, leaves them to us.
        if end is None or end.why != "exit":
            term.cleanup()
        restore()
        sock.close()
        os.close(wake_r)
        os.close(wake_w)


def _settle(root: Path | str, sid: str) -> Session:
    """After a dropped connection, give the session a moment to record how it ended."""
    session = get_session(root, sid)
    waited = 0.0
    while session.alive and waited < _LOST_GRACE_S:
        time.sleep(_LOST_POLL_S)
        waited += _LOST_POLL_S
        session = get_session(root, sid)
    return session


def _note(text: str) -> None:
    with contextlib.suppress(OSError):
        _write_all(2, (text + "\n").encode("utf-8", errors="replace"))


def utf8_locale(env: Mapping[str, str]) -> bool:
    """Whether the human's terminal decodes UTF-8, by the locale: yes unless LC_ALL, LC_CTYPE or
    LANG (the first one set) names another codeset (`de_DE.ISO-8859-1`). A bare `C` counts as
    UTF-8: today's terminals are, and an 8-bit one's user can name its codeset."""
    for key in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(key, "")
        if value:
            _, dot, codeset = value.partition(".")
            codeset = codeset.split("@")[0].replace("-", "").lower()
            return not dot or codeset == "utf8"
    return True


def attach(
    root: Path | str,
    sid: str,
    *,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    passthrough: bool = False,
    utf8: bool = True,
    detach_keys: str = "",
) -> int:
    """Attach this terminal to session `sid`; returns the child's exit code, 0 on detach.

    passthrough: the worker's bytes reach the terminal as printed, clipboard writes, titles
    and queries included (otherwise sessions.termgate filters them; utf8 says how).
    detach_keys: docker's spelling (`ctrl-x,d`); empty: Ctrl-\\ twice."""
    keys = parse_keys(detach_keys) if detach_keys else DEFAULT_KEYS
    out = _Out(stdout_fd, None if passthrough else TermGate(utf8=utf8))
    session = get_session(root, sid)
    if not session.alive:
        return _replay_log(session, out)
    if os.isatty(stdin_fd):  # said before raw mode and the worker's screen, so it is seen
        said = detach_keys or "Ctrl-\\ twice"
        _note(f"[attached to session {sid} · {said} detaches]")
        with contextlib.suppress(OSError):  # a human types into it now (act/reach.py)
            os.unlink(typed_mark(root, sid))
    end = _attach_live(root, sid, stdin_fd, out, keys)
    if end is None:
        return _replay_log(get_session(root, sid), out)
    if end.why in ("exit", "signal", "stdout"):
        return end.code
    if end.why in ("detach", "detached"):
        # a line of its own: the cleanup ends at column 0 of the worker's last line (its
        # prompt, say), which the note would otherwise overwrite
        _note(f"\n[detached from session {sid}] — `looop attach {sid}` comes back")
        return 0
    session = _settle(root, sid)
    if not session.alive:
        return wait_code(session) or 0
    _note(f"error: lost the connection to session `{sid}`; it may still be running")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m looop.sessions.attach --root DIR ID`: attach without the looop CLI."""
    parser = argparse.ArgumentParser(prog="python -m looop.sessions.attach")
    parser.add_argument("--root", required=True, type=Path, help="data dir holding sessions/")
    parser.add_argument(
        "--passthrough", action="store_true", help="pass the worker's bytes unfiltered"
    )
    parser.add_argument("id", help="session id")
    args = parser.parse_args(argv)
    try:
        # The entry point of its own process: the one place here that reads the environment.
        utf8 = utf8_locale(os.environ)
        return attach(args.root, args.id, passthrough=args.passthrough, utf8=utf8)
    except LooopError as exc:
        _note(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
