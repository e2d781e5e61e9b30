"""The control socket: one JSON request per connection, or an attach that turns into frames.

`Control` parses, dispatches to the pump (screen, input) and the lifecycle (kill, restart)
and writes the one reply; it also binds and unlinks the socket and says farewell to every
connection when the session ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import traceback
from pathlib import Path
from typing import Any

from looop.sessions import protocol as proto
from looop.sessions.lifecycle import Lifecycle, OpError
from looop.sessions.pump import AttachClient, Pump, log
from looop.sessions.screen import FORMATS
from looop.sessions.state import ensure_socket_dir
from looop.sessions.states import StatusBook

REQUEST_READ_S = 10.0
REPLY_WRITE_S = 10.0
CLIENT_GRACE_S = 2.0  # attached clients get this long to take their EXIT frame
MAX_SIZE = 1000  # cols/rows beyond this are clamped (pyte cost grows with the grid)


def int_field(req: dict[str, Any], key: str) -> int:
    v = req.get(key, 0)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


class Control:
    def __init__(
        self, sid: str, root: Path, book: StatusBook, pump: Pump, life: Lifecycle | None = None
    ) -> None:
        self.sid = sid
        self.root = root
        self.book = book
        self.pump = pump
        self._life = life
        self.requests: set[asyncio.Task[Any]] = set()
        self.attached: set[asyncio.StreamWriter] = set()
        self.sock_path: Path | None = None
        self.sock_ino = -1

    @property
    def life(self) -> Lifecycle:
        assert self._life is not None
        return self._life

    @life.setter
    def life(self, life: Lifecycle) -> None:
        self._life = life

    # ---- the socket
    async def bind(self) -> asyncio.AbstractServer:
        path = ensure_socket_dir(self.root, self.sid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket of a crashed run
        server = await asyncio.start_unix_server(
            self.handle, path=str(path), limit=proto.MAX_LINE + 1
        )
        os.chmod(path, 0o600)
        self.sock_path = path
        self.sock_ino = os.stat(path).st_ino
        return server

    def unlink_socket(self) -> None:
        path = self.sock_path
        if path is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self.sock_ino:  # not a successor's socket
                os.unlink(path)

    async def farewell(self, end: bytes) -> None:
        """The session ended: EXIT frames to clients, then let every connection end."""
        for c in tuple(self.pump.clients):
            c.finish(end)
        tasks = [c.task for c in self.pump.clients if c.task is not None and not c.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=CLIENT_GRACE_S)
        for w in tuple(self.attached):  # includes clients dropped for not reading
            with contextlib.suppress(Exception):
                w.transport.abort()
        me = asyncio.current_task()
        pending = [t for t in self.requests if t is not me and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLIENT_GRACE_S)

    def cancel_requests(self) -> None:
        for req in list(self.requests):
            req.cancel()

    # ---- one request
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.requests.add(task)
        try:
            reply = await self._serve(reader, writer)
            if reply is not None:
                writer.write(reply)
                await asyncio.wait_for(writer.drain(), REPLY_WRITE_S)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self.requests.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_READ_S)
        except (ValueError, asyncio.LimitOverrunError):
            return proto.error(f"invalid request: longer than {proto.MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            return None
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ValueError("expected an object with an `op`")
        except ValueError as e:
            return proto.error(f"invalid request: {e}")
        op = req["op"]
        if op == "attach":
            await self.attach(reader, writer, req)
            return None
        try:
            return proto.ok(await self.dispatch(op, req))
        except OpError as e:
            return proto.error(str(e))
        except Exception as e:
            log(f"op {op} failed\n{traceback.format_exc()}")
            return proto.error(f"internal error in `{op}`: {e}")

    async def dispatch(self, op: str, req: dict[str, Any]) -> Any:
        if op == "status":
            pump = self.pump
            return {**self.book.status, "output_bytes": pump.log_size, "screen_seq": pump.seq}
        if op == "screenshot":
            fmt = req.get("format", "plain")
            if fmt not in FORMATS:
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
    async def attach(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: dict[str, Any]
    ) -> None:
        cols, rows = int_field(req, "cols"), int_field(req, "rows")
        life = self.life
        if cols > 0 and rows > 0 and not life.finishing:
            self.resize(cols, rows)
        client = AttachClient(writer)
        backlog = self.pump.backlog_bytes_joined()
        if backlog:
            client.push(backlog)
        if life.final.done():
            st = life.final.result()
            client.finish(proto.exit_frame(st["state"] == "killed", st["exit_code"]))
        clients = self.pump.clients
        clients.add(client)
        self.attached.add(writer)
        client.task = asyncio.ensure_future(self.client_writer(client))
        try:
            while True:
                head = await reader.readexactly(proto.HEADER.size)
                tag, n = proto.HEADER.unpack(head)
                if n > proto.MAX_FRAME:
                    break
                payload = await reader.readexactly(n) if n else b""
                if tag == proto.INPUT:
                    with contextlib.suppress(OpError):
                        self.write_input(payload)
                elif tag == proto.RESIZE and len(payload) >= proto.SIZE_BODY.size:
                    c, r = proto.parse_size(payload)
                    if c > 0 and r > 0 and not life.finishing:
                        self.resize(c, r)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            clients.discard(client)
            self.attached.discard(writer)
            if client.task is not None and not client.task.done() and client.end is None:
                client.task.cancel()

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
                    await w.drain()
                    break
                c.wake.clear()
                await c.wake.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            if not c.dropped:
                with contextlib.suppress(Exception):
                    w.close()
            self.pump.clients.discard(c)
