"""`looop web`: bind, print the one URL, serve until SIGINT/SIGTERM. Its own process: a crash
here never touches the pulse, which only ever reads and writes the same data dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import uvicorn

from looop.core import gcpolicy
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.web.app import build_app
from looop.web.auth import (
    Guard,
    is_loopback,
    load_or_make_token,
    public_names,
    runtime_path,
)
from looop.web.door import Door, Limits, fit_cap, protocol_for

if TYPE_CHECKING:
    from starlette.applications import Starlette

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
        # the door (web/door.py): a head deadline, a cap that sheds the longest-waiting
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
