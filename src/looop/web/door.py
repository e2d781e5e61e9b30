"""The door: what `looop web` does with a connection before its request head is whole, that
is before any token is looked at (docs/THREAT_MODEL.md, "The web face before auth").

uvicorn's h11 protocol waits for a head as long as a client likes (its keep-alive timer only
runs between requests, and any byte stops it), and its own `limit_concurrency` counts
half-open connections too, so a flood of them would turn the token holder away with a 503.
Here each head gets a deadline from the moment the connection is ready for it (accepted, or
its previous response sent), which bytes arriving do not extend; and the server holds at most
`max_connections`: one past it sheds the connection that has waited longest for its head,
never one whose request is being answered. A fresh connection whose head comes at once is
the newest waiter and has its head read within one accept burst (the listen backlog, kept
under the cap), so a flood sheds its own older connections, not the real request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from looop.core.errors import LooopError

LATE = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
SHED = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\n\r\n"
)
RESERVE_FDS = 256  # the server's own files, SSE clients' reads, session sockets, threads
MIN_CAP = 16
BURSTS = 3  # accept bursts in flight at once, at most (measured: under 2 at full speed)


@dataclass(frozen=True)
class Limits:
    head_timeout_s: float = 10.0
    max_connections: int = 256
    max_head_bytes: int = 16 << 10

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
        fit = Limits(fit.head_timeout_s, fit.max_connections - 1, fit.max_head_bytes)
    return fit


@dataclass
class Door:
    """One server's count of open connections and its waiters, longest-waiting first."""

    limits: Limits
    open: int = 0
    waiting: dict[DoorProtocol, None] = field(default_factory=dict)
    late: int = 0  # closed at the head deadline
    shed: int = 0  # closed to stay within the cap


class DoorProtocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline and a place in its server's Door."""

    door: Door  # set on the class `protocol_for` makes, one per server

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        door = self.door
        door.open += 1
        self._counted = True
        self._await_head()
        while door.open > door.limits.max_connections and door.waiting:
            oldest = next(iter(door.waiting))
            door.shed += 1
            oldest._close(SHED)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._uncount()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a whole head: its request is answered now
            self._stop_waiting()

    def on_response_complete(self) -> None:
        # before uvicorn's: it may start on a head already here (pipelined), which stops this
        if not self.transport.is_closing():
            self._await_head()
        super().on_response_complete()

    def _await_head(self) -> None:
        self._stop_waiting()
        self.door.waiting[self] = None
        self._deadline = self.loop.call_later(self.door.limits.head_timeout_s, self._late)

    def _stop_waiting(self) -> None:
        self.door.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.door.open -= 1

    def _late(self) -> None:
        self._deadline = None
        self.door.late += 1
        self._close(LATE)

    def _close(self, answer: bytes) -> None:
        """Close a connection waiting for its head: the answer when no response is owed on
        it (a keep-alive one whose response went out, a body still dripping, owes none)."""
        self._stop_waiting()
        self._uncount()  # at once: the transport reports its end only on a later turn
        if self.transport.is_closing():
            return
        if self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE:
            self.transport.write(answer)
        self.transport.close()


def protocol_for(door: Door) -> type[DoorProtocol]:
    """The protocol class uvicorn builds each connection with, bound to this server's door."""

    class Bound(DoorProtocol):
        pass

    Bound.door = door
    return Bound
