"""The door: what `looop web` does with a connection before its request is whole and while
it is handed its answer, that is before any token is looked at and whatever the client is
(docs/THREAT_MODEL.md, "The web face before auth").

uvicorn's h11 protocol waits for a request as long as a client likes (its keep-alive timer
only runs between requests, and any byte stops it), writes to a client that reads nothing
for as long as it stays connected, and its own `limit_concurrency` counts half-open
connections too, so a flood of them would turn the token holder away with a 503. Here:

- a client has `client_timeout_s` to send its whole request (head and body) from the moment
  its connection is ready for one (accepted, or its previous answer sent); bytes arriving do
  not extend it. Late: 408 when no answer has begun, and closed.
- an answer the client does not take (the write buffer stays full) for as long is aborted.
- the server holds at most `max_connections`: one past it sheds the connection that has
  waited longest for a head, never one whose request is being answered; with none waiting,
  the newcomer itself is told 503. A fresh connection whose head comes at once is the newest
  waiter and has its head read within one accept burst (the listen backlog, kept under the
  cap), so a flood sheds its own older connections, not the real request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from looop.core.webconfig import DOOR
from looop.home.errors import LooopError

LATE = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
SHED = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\n\r\n"
)
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST
RESERVE_FDS = 256  # the server's own files, SSE clients' reads, session sockets, threads
MIN_CAP = 16
BURSTS = 3  # accept bursts in flight at once, at most (measured: under 2 at full speed)


@dataclass(frozen=True)
class Limits:
    # the config's defaults (core/webconfig.py), one table for both
    client_timeout_s: float = DOOR["client_timeout_secs"][0]
    max_connections: int = DOOR["max_connections"][0]
    max_head_bytes: int = DOOR["max_head_bytes"][0]

    @property
    def backlog(self) -> int:
        """The listen backlog: one accept burst, kept under the cap so a burst of fresh
        connections can never shed one of its own before its head is read."""
        return max(8, min(128, self.max_connections // 2))


def fit_cap(limits: Limits, nofile: int) -> Limits:
    """`limits` with the cap lowered to fit the open-file limit `nofile`, keeping room for
    the server's own files and for BURSTS accept bursts (asyncio makes a connection's
    transport a couple of loop turns after accepting it: until then it holds a descriptor
    the door has not counted); refused when not even a small cap fits."""
    fit = limits
    while fit.max_connections + BURSTS * fit.backlog + RESERVE_FDS > nofile:
        if fit.max_connections <= MIN_CAP:
            raise LooopError(
                f"the open-file limit ({nofile}) leaves no room for connections — raise it "
                "(ulimit -n) to 1024 or more"
            )
        fit = Limits(fit.client_timeout_s, fit.max_connections - 1, fit.max_head_bytes)
    return fit


@dataclass
class Door:
    """One server's count of open connections and its waiters, longest-waiting first."""

    limits: Limits
    open: int = 0
    waiting: dict[DoorProtocol, None] = field(default_factory=dict)
    late: int = 0  # closed at the request's deadline
    stalled: int = 0  # aborted: the client took none of its answer
    shed: int = 0  # closed to stay within the cap


class DoorProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the client's part and a place in its
    server's Door."""

    door: Door  # set on the class `protocol_for` makes, one per server

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None  # the request's
        self._stall: asyncio.TimerHandle | None = None  # the answer's, while writing is paused
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        no_nagle(transport)
        door = self.door
        door.open += 1
        self._counted = True
        self._await_request()
        while door.open > door.limits.max_connections and door.waiting:
            oldest = next(iter(door.waiting))
            door.shed += 1
            oldest._close(SHED)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self._unstall()
        self._uncount()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a whole head: its request is answered, never shed
            self.door.waiting.pop(self, None)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # all of it came
            self._stop_deadline()

    def on_response_complete(self) -> None:
        # before uvicorn's: it may start on a request already here (pipelined), which stops it
        if not self.transport.is_closing():
            self._await_request()
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.door.limits.client_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        self._unstall()
        super().resume_writing()

    def _await_request(self) -> None:
        self._stop_deadline()
        self.door.waiting[self] = None
        self._deadline = self.loop.call_later(self.door.limits.client_timeout_s, self._late)

    def _stop_deadline(self) -> None:
        self.door.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _unstall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.door.open -= 1

    def _late(self) -> None:
        self._deadline = None
        self.door.late += 1
        self._close(LATE)

    def _stalled(self) -> None:
        self._stall = None
        self.door.stalled += 1
        self._close(b"")

    def _close(self, answer: bytes) -> None:
        """End a connection: `answer` first when no answer has begun on it and it takes what
        it is sent; aborted when it does not (a plain close would wait for that forever)."""
        self._stop_deadline()
        self._uncount()  # at once: the transport reports its end only on a later turn
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() or not answer:
            # a reset, not a close: a close would keep what the client never took queued in
            # the kernel (up to megabytes) until TCP gives up on it
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            self.transport.abort()
            return
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # no answer begun
            self.transport.write(answer)
        self.transport.close()


def no_nagle(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on the connection, whatever socket it was accepted on: uvicorn writes an
    answer's head and body apart, and with Nagle on the body waits for the client's delayed
    ACK of the head (~40 ms a request on a kept-alive connection)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def protocol_for(door: Door) -> type[DoorProtocol]:
    """The protocol class uvicorn builds each connection with, bound to this server's door."""

    class Bound(DoorProtocol):
        pass

    Bound.door = door
    return Bound
