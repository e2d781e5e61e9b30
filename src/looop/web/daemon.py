"""`looop up --web`: the web server beside the pulse, as its own detached process (never a
child or a thread of the pulse: it can crash, be killed or restart and the loop never notices,
since the two share only the data dir). Light: no web library loads here."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from looop.core.context import Ctx
from looop.home import locks, store
from looop.home.errors import LooopError
from looop.views.status import is_web_pid, web_record
from looop.web.auth import load_or_make_token

READY_S = 15.0  # uvicorn's imports and bind on a busy 2-core machine


@dataclass(frozen=True)
class WebUp:
    started: bool
    pid: int
    url: str  # with the token: what `looop web` prints


def running(ctx: Ctx) -> dict[str, Any] | None:
    """The live server's runtime record (pid, url, port), None when none serves this dir."""
    return web_record(os.fspath(ctx.paths.data))


def link(ctx: Ctx) -> str | None:
    """The running server's link with its token (`looop web --url`), None when none serves
    this data dir: the way back to it that no log holds."""
    rec = running(ctx)
    if rec is None:
        return None
    return f"{rec.get('url')}/?token={load_or_make_token(ctx.paths)}"


def log_path(ctx: Ctx) -> str:
    return os.fspath(ctx.paths.lock_dir / "web.log")


def owner_path(ctx: Ctx) -> str:
    """Names the pid of a web server `looop up --web` started: the only one `down` stops."""
    return os.fspath(ctx.paths.lock_dir / "web.up")


def start_web(ctx: Ctx, owned: bool = False) -> WebUp:
    """Start `looop web` detached unless one serves this data dir already (idempotent).
    owned: `up` starts it, so `down` stops it (a `looop web` started apart is never `up`'s)."""
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    with locks.dir_lock(ctx.paths.lock_dir / "web-up"):
        token = load_or_make_token(ctx.paths)
        rec = running(ctx)
        if rec is not None:
            return WebUp(False, int(str(rec["pid"])), f"{rec.get('url')}/?token={token}")
        # the log keeps the server's errors, never its printed URL (which carries the token):
        # the link with its token is what `looop up --web` prints, and again on each run
        fd = os.open(log_path(ctx), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(
                [ctx.bin, "web"],
                cwd=ctx.paths.data,
                env=dict(ctx.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
                start_new_session=True,  # its own session: a Ctrl-C at `looop up` never reaches it
            )
        finally:
            os.close(fd)
        deadline = ctx.clock.monotonic() + READY_S
        while ctx.clock.monotonic() < deadline:
            rec = running(ctx)
            if rec is not None and rec.get("pid") == proc.pid:
                if owned:
                    store.atomic_write(owner_path(ctx), f"{proc.pid}\n", durable=False)
                _log(
                    ctx,
                    f"looop web: pid {proc.pid} serves {rec.get('url')}/ (the link with "
                    "its token: `looop web --url`)",
                )
                return WebUp(True, proc.pid, f"{rec.get('url')}/?token={token}")
            if proc.poll() is not None:
                break
            select.select([], [], [], 0.05)
        tail = store.tail_lines(log_path(ctx), 1)
        with contextlib.suppress(OSError):
            proc.kill()
        raise LooopError(
            f"the web server did not start: {tail[-1] if tail else 'no output'} — see "
            f"{log_path(ctx)}"
        )


def _log(ctx: Ctx, line: str) -> None:
    """One line in web.log, beside the server's own output (O_APPEND: never over it)."""
    fd = os.open(log_path(ctx), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def stop_web(ctx: Ctx, grace_s: float = 5.0, only_owned: bool = False) -> int | None:
    """SIGTERM the server serving this dir (SIGKILL after grace_s); its pid, None when none.
    only_owned: only the one `looop up --web` started (`down` leaves a `looop web` alone)."""
    rec = running(ctx)
    if rec is None:
        return None
    pid = int(str(rec["pid"]))
    if only_owned:
        owner = (store.read_text(owner_path(ctx)) or "").strip()
        if owner != str(pid):
            return None
        store.remove(owner_path(ctx))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = ctx.clock.monotonic() + grace_s
    while ctx.clock.monotonic() < deadline and is_web_pid(pid):
        select.select([], [], [], 0.05)
    if is_web_pid(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pid
