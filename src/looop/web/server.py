"""`looop web`: bind, print the one URL, serve until SIGINT/SIGTERM. Its own process: a crash
here never touches the pulse, which only ever reads and writes the same data dir.

The door (Door, DoorProtocol): what `looop web` does with a connection before its request is
whole and while it is handed its answer, that is before any token is looked at and whatever
the client is (docs/THREAT_MODEL.md, "The web face before auth").

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
import os
import resource
import signal
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import h11
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from looop.core import gcpolicy
from looop.core.context import Ctx
from looop.core.webconfig import DOOR
from looop.home import store
from looop.home.errors import LooopError
from looop.web.app import build_app
from looop.web.auth import Guard, is_loopback, load_or_make_token, public_names, runtime_path

if TYPE_CHECKING:
    from starlette.applications import Starlette

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


DEFAULT_LIMITS = Limits()
TICK_S = 1.0  # uvicorn's housekeeping (the Date header, a stop asked): once a second


class Server(uvicorn.Server):
    """uvicorn's server woken once a second for its housekeeping, not ten times (most of a
    quiet server's own cost), and at once by a stop signal."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.woken: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def main_loop(self) -> None:
        woken = asyncio.Event()
        self.woken = (asyncio.get_running_loop(), woken)
        counter = 0  # uvicorn's: a multiple of ten redraws the Date header
        while not await self.on_tick(counter):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), TICK_S)
            counter = (counter + 10) % 864000

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self.woken is not None:
            loop, woken = self.woken
            with contextlib.suppress(RuntimeError):  # its loop closed already: nothing waits
                loop.call_soon_threadsafe(woken.set)


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8765
    tls_cert: Path | None = None
    tls_key: Path | None = None
    new_token: bool = False
    public_url: str | None = None  # the config's `web.url`: the name a phone reaches us by
    limits: Limits = DEFAULT_LIMITS  # the door: head deadline, connection cap, head size cap


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off only on sockets that say TCP, and with
    # it on, an answer sent as head + body waits out the client's delayed ACK (~40 ms) on
    # every request of a kept-alive connection but its first
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise LooopError(
            f"cannot listen on {host}:{port}: {e.strerror or e} — pick another with --port"
        ) from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int, tls: bool, public_url: str | None) -> str:
    if public_url:
        return public_url.rstrip("/")
    shown = "127.0.0.1" if host.strip("[]") in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def serve(ctx: Ctx, opt: Options, out: TextIO, err: TextIO) -> int:
    _check_tls(opt)
    gcpolicy.long_lived()  # a server left open for days: its requests' garbage is collected
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    token = load_or_make_token(ctx.paths, opt.new_token)
    limits = _fit_limits(opt, err)
    sock = bind(opt.host, opt.port, limits.backlog)
    port = sock.getsockname()[1]
    tls = opt.tls_cert is not None
    guard = Guard(token=token, bind=opt.host, port=port, public=public_names(opt.public_url))
    app = build_app(ctx, guard, secure=tls)
    base = url_for(opt.host, port, tls, opt.public_url)
    _warn_if_exposed(opt, port, tls, err)
    rt = runtime_path(ctx.paths)
    store.write_json(rt, {"pid": os.getpid(), "url": base, "port": port, "host": opt.host})
    out.write(f"{base}/?token={token}\n")
    out.flush()
    server = Server(_uvicorn_config(app, opt, limits))
    _run_until_signal(server, sock, rt)
    return 0


def _check_tls(opt: Options) -> None:
    if (opt.tls_cert is None) != (opt.tls_key is None):
        raise LooopError("give both --tls-cert and --tls-key (or neither)")
    for f in (opt.tls_cert, opt.tls_key):
        if f is not None and not f.is_file():
            raise LooopError(f"no such file {f} (a PEM certificate / key for --tls-*)")


def _fit_limits(opt: Options, err: TextIO) -> Limits:
    """The door's limits, the connection cap lowered to what the open-file limit allows."""
    limits = fit_cap(opt.limits, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if limits != opt.limits:
        err.write(
            f"looop web: at most {limits.max_connections} connections (not "
            f"{opt.limits.max_connections}): the open-file limit leaves no more room\n"
        )
    return limits


def _warn_if_exposed(opt: Options, port: int, tls: bool, err: TextIO) -> None:
    if not is_loopback(opt.host):
        err.write(
            f"looop web: listening on {opt.host}:{port} — anyone who reaches this port with the "
            "token can steer the loop"
            + ("" if tls else "; without --tls-cert/--tls-key the token crosses the network")
            + "\n"
        )


def _uvicorn_config(app: Starlette, opt: Options, limits: Limits) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ssl_certfile=str(opt.tls_cert) if opt.tls_cert else None,
        ssl_keyfile=str(opt.tls_key) if opt.tls_key else None,
        timeout_graceful_shutdown=2,
        server_header=False,
        # the door (above): a head deadline, a cap that sheds the longest-waiting
        # heads; uvicorn's limit_concurrency stays off, it counts half-open connections too
        http=protocol_for(Door(limits)),
        ws="none",  # no route speaks WebSocket: an upgrade is never handed elsewhere
        h11_max_incomplete_event_size=limits.max_head_bytes,
        backlog=limits.backlog,
    )


def _run_until_signal(server: Server, sock: socket.socket, rt: Path) -> None:
    """Serve on sock until SIGINT/SIGTERM, then put the handlers back, close the socket and
    remove the runtime file if it is still ours."""

    def stop(_signum: int, _frame: object) -> None:
        # a flag, not an exception: a signal before uvicorn takes over lands inside asyncio's
        # own set-up, and raising there leaves a half-made loop behind; uvicorn checks the flag
        # once it has started and ends cleanly (the runtime file removed below)
        server.should_exit = True

    # uvicorn handles the signals while it serves and raises them again once it has stopped
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sock.close()
        with contextlib.suppress(OSError):
            if (store.read_json_object(rt) or {}).get("pid") == os.getpid():
                rt.unlink()
