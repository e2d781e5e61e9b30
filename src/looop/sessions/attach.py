"""Interactive attach client: put the local terminal in raw mode and speak attach frames.

Detach with Ctrl-\\ pressed twice (legacy byte, Kitty CSI-u or xterm modifyOtherKeys form).
The worker's output passes sessions.termgate on its way to the terminal (clipboard writes,
titles and echoing queries dropped) unless the human asks for `passthrough`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import select
import signal
import sys
import termios
import tty
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.home import jsonio
from looop.home.errors import LooopError
from looop.home.logfiles import open_view
from looop.sessions import protocol
from looop.sessions.detachkey import DEFAULT_KEYS, Key, parse_keys
from looop.sessions.detachkey import DETACH_BYTE as DETACH_BYTE
from looop.sessions.detachkey import ESC_FLUSH_S as ESC_FLUSH_S
from looop.sessions.detachkey import DetachFilter as DetachFilter
from looop.sessions.state import (
    AGENT_TYPED,
    Session,
    SessionError,
    get_session,
    session_dir,
    socket_path,
    wait_code,
)
from looop.sessions.termgate import TermGate

# ---- attach frames (sessions §1.8) -------------------------------------------------------------

_CONNECT_TRIES = 75
_CONNECT_GAP_S = 0.04
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


def recorded_code(session: Session) -> int:
    """A finished session's exit code: its own, 130 when killed, 137 when its owner died."""
    code = wait_code(session)
    return 0 if code is None else code


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
    code: int = 0


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
    return recorded_code(session)


async def _connect(
    root: Path, sid: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Open the control socket, retrying briefly; None when the session finished meanwhile."""
    path = socket_path(root, sid)
    for _ in range(_CONNECT_TRIES):
        try:
            return await asyncio.open_unix_connection(str(path), limit=1 << 20)
        except OSError:
            pass
        if not get_session(root, sid).alive:
            return None
        await asyncio.sleep(_CONNECT_GAP_S)
    raise SessionError(f"session `{sid}` does not answer on its control socket; try again")


async def _read_frames(reader: asyncio.StreamReader, out: _Out, sid: str) -> _End:
    first = True
    while True:
        try:
            header = await reader.readexactly(protocol.HEADER.size)
            if first and header.startswith(b"{"):
                # The supervisor refused the attach with a JSON error line instead of frames.
                line = header + await reader.readline()
                raise SessionError(_refusal(line, sid))
            first = False
            tag, length = protocol.HEADER.unpack(header)
            if length > protocol.MAX_REPLY:  # not frames at all: treat as a broken stream
                return _End("lost")
            payload = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return _End("lost")
        if tag == protocol.OUTPUT:
            try:
                out.write(payload)
            except OSError:
                return _End("stdout", 1)
        elif tag == protocol.EXIT:
            if len(payload) < protocol.EXIT_BODY.size:
                return _End("exit", 130)  # an end we cannot read counts as signaled
            _signaled, code = protocol.parse_exit(payload)
            return _End("exit", code)
        elif tag == protocol.DETACHED:
            return _End("detached")
        # Unknown tags are skipped so a newer supervisor can add frames.


def _refusal(line: bytes, sid: str) -> str:
    try:
        reply = jsonio.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("error"), str):
        return f"session `{sid}` refused to attach: {reply['error']}"
    return f"session `{sid}` answered the attach request with something other than frames"


class _Attached:
    """One live attachment: stdin -> filter -> INPUT, SIGWINCH -> RESIZE, frames -> stdout."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        writer: asyncio.StreamWriter,
        stdin_fd: int,
        stdout_fd: int,
        keys: tuple[Key, ...] = DEFAULT_KEYS,
    ) -> None:
        self.loop = loop
        self.writer = writer
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.filter = DetachFilter(keys)
        self.done: asyncio.Future[_End] = loop.create_future()
        self.reading = False
        self.timer: asyncio.TimerHandle | None = None

    def send(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)

    def finish(self, end: _End) -> None:
        if not self.done.done():
            self.done.set_result(end)

    def start_stdin(self) -> None:
        try:
            self.loop.add_reader(self.stdin_fd, self.on_stdin)
            self.reading = True
        except PermissionError:
            # A regular file or /dev/null cannot be polled: it is all there already.
            while not self.done.done() and self.read_once():
                pass

    def stop_stdin(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.stdin_fd)
            self.reading = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def on_stdin(self) -> None:
        if not self.read_once():
            self.stop_stdin()

    def read_once(self) -> bool:
        """Forward one read of stdin; False at end of input."""
        try:
            data = os.read(self.stdin_fd, _READ_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.forward(self.filter.flush_pending(float("inf")))
            return False
        out, detach = self.filter.feed(data, self.loop.time())
        self.forward(out)
        if detach:
            self.finish(_End("detach"))
            return False
        self.arm_timer()
        return True

    def forward(self, data: bytes) -> None:
        if data:
            self.send(protocol.frame(protocol.INPUT, data))

    def arm_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.filter.deadline
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        self.forward(self.filter.flush_pending(self.loop.time()))
        self.arm_timer()

    def on_winch(self) -> None:
        cols, rows = _terminal_size(self.stdin_fd, self.stdout_fd)
        self.send(protocol.resize_frame(cols, rows))


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _install_signals(
    loop: asyncio.AbstractEventLoop, on_winch: Callable[[], None], on_stop: Callable[[int], None]
) -> list[tuple[signal.Signals, Any]]:
    """Route SIGWINCH/SIGTERM/SIGHUP into the loop; returns what to put back afterwards."""
    installed: list[tuple[signal.Signals, Any]] = []
    wanted: list[tuple[signal.Signals, Callable[..., None], tuple[Any, ...]]] = [
        (signal.SIGWINCH, on_winch, ()),
        *((sig, on_stop, (int(sig),)) for sig in _STOP_SIGNALS),
    ]
    for sig, callback, args in wanted:
        try:
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, callback, *args)
        except (ValueError, RuntimeError):
            continue  # not the main thread: no signal routing, restore still runs via finally
        installed.append((sig, previous))
    return installed


def _uninstall_signals(
    loop: asyncio.AbstractEventLoop, installed: list[tuple[signal.Signals, Any]]
) -> None:
    for sig, previous in installed:
        loop.remove_signal_handler(sig)
        with contextlib.suppress(ValueError, TypeError, OSError):
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


async def _attach_live(
    root: Path, sid: str, stdin_fd: int, out: _Out, keys: tuple[Key, ...]
) -> _End | None:
    stdout_fd = out.fd
    conn = await _connect(root, sid)
    if conn is None:
        return None
    reader, writer = conn
    loop = asyncio.get_running_loop()
    cols, rows = _terminal_size(stdin_fd, stdout_fd)
    writer.write(protocol.request_line("attach", cols=cols, rows=rows))
    att = _Attached(loop, writer, stdin_fd, stdout_fd, keys)
    term = _Terminal(stdin_fd, stdout_fd)
    installed = _install_signals(loop, att.on_winch, lambda sig: att.finish(_End("signal", sig)))
    frames = asyncio.ensure_future(_read_frames(reader, out, sid))
    end: _End | None = None
    try:
        term.enter_raw()
        att.start_stdin()
        await asyncio.wait([frames, att.done], return_when=asyncio.FIRST_COMPLETED)
        end = frames.result() if frames.done() else att.done.result()
        return end
    finally:
        att.stop_stdin()
        if not frames.done():
            frames.cancel()
            with contextlib.suppress(asyncio.CancelledError, LooopError):
                await frames
        with contextlib.suppress(OSError):
            out.end()  # an unfinished sequence at the end is dropped, not left half-sent
        term.restore()
        # A program that exited tore its modes down itself (and a second ?1049l would move the
        # cursor); one we leave running, or an error, leaves them to us.
        if end is None or end.why != "exit":
            term.cleanup()
        _uninstall_signals(loop, installed)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _settle(root: Path, sid: str) -> Session:
    """After a dropped connection, give the session a moment to record how it ended."""
    session = get_session(root, sid)
    waited = 0.0
    while session.alive and waited < _LOST_GRACE_S:
        await asyncio.sleep(_LOST_POLL_S)
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
    root: Path,
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
            (session_dir(root, sid) / AGENT_TYPED).unlink(missing_ok=True)
    end = asyncio.run(_attach_live(root, sid, stdin_fd, out, keys))
    if end is None:
        return _replay_log(get_session(root, sid), out)
    if end.why == "exit":
        return end.code
    if end.why in ("detach", "detached"):
        # a line of its own: the cleanup ends at column 0 of the worker's last line (its
        # prompt, say), which the note would otherwise overwrite
        _note(f"\n[detached from session {sid}] — `looop attach {sid}` comes back")
        return 0
    if end.why == "signal":
        return 128 + end.code
    if end.why == "stdout":
        return end.code
    session = asyncio.run(_settle(root, sid))
    if not session.alive:
        return recorded_code(session)
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
