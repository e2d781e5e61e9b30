"""The control socket: one JSON request per connection, or an attach that turns into frames.

`Control` parses, dispatches to the pump (screen, input) and the lifecycle (kill, restart)
and writes the one reply; it also binds and unlinks the socket and says farewell to every
connection when the session ends, each one a `controlconn.Conn`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import signal
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from looop.home import jsonio
from looop.home.sessionfiles import SessionError, ensure_socket_file
from looop.runners import enter_gap
from looop.sessions import protocol as proto
from looop.sessions.controlconn import AttachClient, Conn, delivered
from looop.sessions.evloop import Future, Loop, log, log_failure, within
from looop.sessions.lifecycle import OpError

if TYPE_CHECKING:
    from looop.sessions.evloop import Task
    from looop.sessions.lifecycle import Lifecycle
    from looop.sessions.pump import Pump
    from looop.sessions.states import StatusBook


REQUEST_READ_S = 10.0
REPLY_WRITE_S = 10.0
CLIENT_GRACE_S = 2.0  # attached clients get this long to take their EXIT frame (see delivered)
MAX_SIZE = 1000  # cols/rows beyond this are clamped (the screen grows with the grid)


def int_field(req: dict[str, Any], key: str) -> int:
    v = req.get(key, 0)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


class Control:
    life: Lifecycle  # set once made: the lifecycle is made with this control's farewell

    def __init__(self, loop: Loop, sid: str, root: str, book: StatusBook, pump: Pump) -> None:
        self.loop = loop
        self.sid = sid
        self.root = root
        self.book = book
        self.pump = pump
        self.requests: set[Task] = set()
        self.attached: set[Conn] = set()
        self.listener: socket.socket | None = None
        self.sock_path: str | None = None
        self.sock_ino = -1

    # ---- the socket
    def bind(self) -> None:
        """A non-blocking listener at the session's socket name (its folders made). A stale
        name (a crashed run's) is replaced; a folder a sweeper removed between its making
        and the bind is made once more."""
        for tries_left in (1, 0):
            path = ensure_socket_file(self.root, self.sid)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a stale socket of a crashed run
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.bind(path)
                sock.listen(128)
                os.chmod(path, 0o600)
                self.sock_path, self.sock_ino = path, os.stat(path).st_ino
            except FileNotFoundError:
                sock.close()
                if not tries_left:
                    raise
                continue
            except BaseException:
                sock.close()
                raise
            self.listener = sock
            self.loop.add_reader(sock.fileno(), self._accept)
            return

    def rebind_if_gone(self) -> bool:
        """Bind again when the socket's name was removed; True when it did. A name that is
        there is never taken back, ours or not (a data dir made anew at this path may run a
        session of the same id)."""
        old, path = self.listener, self.sock_path
        if old is None or path is None or os.path.lexists(path):
            return False
        try:
            self.bind()
        except (OSError, SessionError) as e:
            log(f"cannot bind the control socket again: {e}")
            return False  # the old one still serves whoever holds a connection
        self.loop.remove_reader(old.fileno())
        old.close()
        log("the control socket was gone: bound again")
        return True

    def _accept(self) -> None:
        sock = self.listener
        if sock is None:
            return
        for _ in range(32):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors: say so, keep serving
                log(f"accept failed: {e}")
                return
            fd = conn.detach()
            os.set_blocking(fd, False)
            self.loop.kept(self.handle(Conn(self.loop, fd)), self.requests, "a control request")

    def close_server(self) -> None:
        sock, self.listener = self.listener, None
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()

    def unlink_socket(self) -> None:
        path = self.sock_path
        if path is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self.sock_ino:  # not a successor's socket
                os.unlink(path)

    async def farewell(self, end: bytes) -> None:
        """The session ended: EXIT frames to clients, then let every connection end."""
        clients = tuple(self.pump.clients)
        for c in clients:
            c.finish(end)
        await delivered(self.loop, clients)
        for w in tuple(self.attached):  # includes clients dropped for not reading
            w.abort()
        pending = [t for t in self.requests if not t.done()]
        if pending:
            await within(self.loop, pending, CLIENT_GRACE_S)

    # ---- one request
    async def handle(self, conn: Conn) -> None:
        try:
            reply = await self._serve(conn)
            if reply is not None:
                conn.write(reply)
                await conn.drain(REPLY_WRITE_S)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            conn.close()

    async def _serve(self, conn: Conn) -> bytes | None:
        try:
            line = await conn.readline(proto.MAX_LINE + 1, REQUEST_READ_S)
        except ValueError:
            return proto.error(f"invalid request: longer than {proto.MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            return None
        try:
            req = jsonio.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ValueError("expected an object with an `op`")
        except ValueError as e:
            return proto.error(f"invalid request: {e}")
        op = req["op"]
        if op == "attach":
            await self.attach(conn, req)
            return None
        try:
            return proto.ok(await self.dispatch(op, req))
        except OpError as e:
            return proto.error(str(e))
        except Exception as e:
            log_failure(f"op {op} failed")
            return proto.error(f"internal error in `{op}`: {e}")

    async def dispatch(self, op: str, req: dict[str, Any]) -> Any:
        if op == "status":
            pump = self.pump
            return {**self.book.status, "output_bytes": pump.log_size, "screen_seq": pump.seq}
        if op == "screenshot":
            fmt = req.get("format", "plain")
            if fmt not in proto.SHOT_FORMATS:
                raise OpError(f"invalid request: unknown format `{fmt}` (plain, ansi or json)")
            return self.pump.render(str(fmt), bool(req.get("trim", True)))
        if op == "send":
            return self.op_send(req)
        if op == "resize":
            cols, rows = self.resize(int_field(req, "cols"), int_field(req, "rows"))
            return {"cols": cols, "rows": rows}
        if op == "kill":
            return await self.life.kill()
        if op == "restart":
            return await self.life.restart()
        if op == "detach":
            return {"detached": True, "clients": self.detach_all()}
        if op == "echo":
            return await await_echo(self.loop, self.pump, self.life.final, req, self.life.argv)
        raise OpError(f"invalid request: unknown op `{op}`")

    def op_send(self, req: dict[str, Any]) -> dict[str, Any]:
        if isinstance(req.get("data_b64"), str):
            try:
                data = base64.b64decode(req["data_b64"], validate=True)
            except ValueError as e:
                raise OpError(f"invalid request: bad data_b64 ({e})") from e
        elif isinstance(req.get("text"), str):
            data = req["text"].encode("utf-8", "surrogateescape")
        else:
            raise OpError("invalid request: send needs `text` or `data_b64`")
        if req.get("newline", True):
            data += b"\n"
        offset = self.pump.log_size
        self.write_input(data)
        return {"sent": len(data), "offset": offset}

    def write_input(self, data: bytes) -> None:
        if not self.life.accepts_input:
            raise OpError(f"session {self.sid} has already finished — it no longer accepts input")
        if not self.pump.queue_input(data):
            raise OpError(f"session {self.sid} is not reading its input (input queue full)")

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        pump = self.pump
        cols = min(cols, MAX_SIZE) if cols > 0 else pump.cols
        rows = min(rows, MAX_SIZE) if rows > 0 else pump.rows
        if (cols, rows) == (pump.cols, pump.rows):
            return cols, rows
        self.life.resize_pty(cols, rows)
        pump.resize_screen(cols, rows)
        self.book.update(cols=cols, rows=rows)
        return cols, rows

    def detach_all(self) -> int:
        n = 0
        for c in tuple(self.pump.clients):
            if not c.dropped and c.end is None:
                c.finish(proto.frame(proto.DETACHED))
                n += 1
        return n

    # ---- attach
    async def attach(self, conn: Conn, req: dict[str, Any]) -> None:
        cols, rows = int_field(req, "cols"), int_field(req, "rows")
        life = self.life
        if cols > 0 and rows > 0 and not life.finishing:
            self.resize(cols, rows)
        client = AttachClient(conn)
        backlog = self.pump.backlog_bytes_joined()
        if backlog:
            client.push(backlog)
        if life.final.done():
            st = life.final.result()
            client.finish(proto.exit_frame(st["state"] == "killed", st["exit_code"]))
        clients = self.pump.clients
        clients.add(client)
        self.attached.add(conn)
        client.task = self.loop.task(self.client_writer(client))
        try:
            while True:
                head = await conn.readexactly(proto.HEADER.size)
                tag, n = proto.HEADER.unpack(head)
                if n > proto.MAX_FRAME:
                    break
                payload = await conn.readexactly(n) if n else b""
                if tag == proto.INPUT:
                    with contextlib.suppress(OpError):
                        self.write_input(payload)
                elif tag == proto.RESIZE and len(payload) >= proto.SIZE_BODY.size:
                    c, r = proto.parse_size(payload)
                    if c > 0 and r > 0 and not life.finishing:
                        self.resize(c, r)
        except ConnectionError:
            pass
        finally:
            clients.discard(client)
            self.attached.discard(conn)
            if client.task is not None and not client.task.done() and client.end is None:
                client.task.cancel()
            if client.task is not None and not client.task.done():
                # the writer still owes this client its EXIT frame: the writer closes it
                await delivered(self.loop, (client,))

    async def client_writer(self, c: AttachClient) -> None:
        w = c.writer
        try:
            while True:
                if c.queue:
                    parts: list[bytes] = []
                    size = 0
                    while c.queue and size < 256 * 1024:
                        b = c.queue.popleft()
                        parts.append(b)
                        size += len(b)
                    c.queued -= size
                    w.write(proto.frame(proto.OUTPUT, b"".join(parts)))
                    await w.drain()
                    continue
                if c.end is not None:
                    w.write(c.end)
                    await w.drain(everything=True)  # done once the peer has all of it
                    break
                c.wake.clear()
                await c.wake.wait()
        except ConnectionError:
            pass
        finally:
            if not c.dropped:
                w.close()
            self.pump.clients.discard(c)


RESYNC_S = 30.0  # the look when the folder cannot be watched
SETTLE_S = 0.3  # a cleaner's rm -rf ends first: a name made in its folder would stop its rmdir
_GONE = fcntl.DN_DELETE | fcntl.DN_RENAME | fcntl.DN_MULTISHOT


class SocketWatch:
    """Binds the control socket again when its name goes: told by the kernel, else on a timer."""

    def __init__(self, loop: Loop, control: Control, live: Callable[[], bool]) -> None:
        self.loop, self.control = loop, control
        self.live = live  # False once the session is finishing: no more binding
        self.folder_fd = -1  # the watched folder (its notices come as SIGIO)
        self.pending = False  # a look is scheduled (the settle, or the slow fallback)

    def start(self) -> None:
        self.loop.add_signal_handler(signal.SIGIO, self.on_change)  # before the first notice
        self.arm()

    def arm(self) -> None:
        """Watch the socket's folder anew (it may be a new folder); the slow look if not."""
        self.unwatch()
        path = self.control.sock_path
        if path is not None:
            try:
                self.folder_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
                fcntl.fcntl(self.folder_fd, fcntl.F_NOTIFY, _GONE)
                return
            except OSError as e:  # folder gone again, or no dnotify here
                self.unwatch()
                log(f"control socket not watched ({e.strerror or e}): a look every {RESYNC_S:g}s")
        self.look_after(RESYNC_S)

    def look_after(self, delay: float) -> None:
        if not self.pending:
            self.pending = True
            self.loop.call_later(delay, self.look)

    def on_change(self) -> None:
        """A name in the folder was removed or renamed (maybe a neighbour's: the look says)."""
        if self.folder_fd >= 0:
            self.look_after(SETTLE_S)

    def look(self) -> None:
        self.pending = False
        if not self.live():
            return
        if self.control.rebind_if_gone() or self.folder_fd < 0:
            self.arm()  # the new folder (a wipe made a new one), or the fallback's next look

    def unwatch(self) -> None:
        """Its notices end (at the last: before the loop's SIGIO disposition is gone)."""
        if self.folder_fd >= 0:
            os.close(self.folder_fd)  # the last close ends the notices
            self.folder_fd = -1


ECHO_MAX_S = 10.0  # the longest wait a request may ask: a caller waits on its socket as long
TAIL_MAX = 64  # the end of a typed line that must show: a few characters are plenty


def _fields(req: dict[str, Any]) -> tuple[str, int, float]:
    tail, offset, timeout = req.get("tail"), req.get("offset"), req.get("timeout")
    if not isinstance(tail, str) or not tail or len(tail) > TAIL_MAX:
        raise OpError(f"invalid request: echo needs a `tail` of 1 to {TAIL_MAX} characters")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise OpError("invalid request: echo needs an `offset` (a log size, >= 0)")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise OpError("invalid request: echo needs a `timeout` in seconds")
    return tail, offset, min(max(float(timeout), 0.0), ECHO_MAX_S)


def shown(pump: Pump, tail: str, offset: int) -> bool:
    """Output came after `offset` and the screen (its lines joined, spaces dropped: a wrapped
    line still matches) shows `tail`."""
    if pump.log_size <= offset:
        return False
    text = str(pump.render("plain", True).get("text", ""))
    return tail in "".join(text.split())


async def await_echo(
    loop: Loop, pump: Pump, final: Future, req: dict[str, Any], argv: Sequence[str] = ()
) -> dict[str, Any]:
    """{"echoed": True} once `tail` shows and then the gap of the CLI `argv` runs passed (it
    takes an Enter read sooner as a newline: home/runners.enter_gap); False at the timeout
    or when the session ends."""
    tail, offset, timeout = _fields(req)
    deadline = loop.time() + timeout
    while not shown(pump, tail, offset):
        left = deadline - loop.time()
        if left <= 0 or final.done():
            return {"echoed": False}
        woke = loop.future()
        pump.hearing.add(woke)

        def ended(_f: Future, woke: Future = woke) -> None:
            woke.set_result(None)

        final.add_done_callback(ended)
        try:
            await within(loop, woke, left)
        finally:
            pump.hearing.discard(woke)
            final.remove_done_callback(ended)  # a long session's later sends add their own
    gap = enter_gap(argv)
    if gap > 0 and not final.done():
        await within(loop, final, gap)  # the gap, or the session's end if that comes first
    return {"echoed": True}
