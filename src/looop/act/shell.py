"""run_shell: `bash -c` in the data dir with a deadline, a process-group kill, bounded output,
and no descendant outliving the command (core/procs containment)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
from dataclasses import dataclass, replace

from looop.core.clock import Clock
from looop.core.context import Ctx
from looop.core.procs import UNCONTAINED, Containment

TAIL_CHARS = 4000
# Enough bytes for TAIL_CHARS even if every char is 4 bytes of UTF-8.
_TAIL_BYTES = TAIL_CHARS * 4
# After bash exits, a backgrounded grandchild may keep the pipes open: stop reading then.
_EXIT_GRACE_S = 0.5


@dataclass(frozen=True)
class ShellResult:
    exit_code: int | None  # None when the deadline killed it; 128+N for death by signal N
    timed_out: bool
    secs: float
    stdout: str  # tail, last TAIL_CHARS chars
    stderr: str


class _Tail:
    """Keeps only the last bytes of a stream, so a chatty command cannot exhaust memory."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def add(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > 2 * _TAIL_BYTES:
            del self.buf[:-_TAIL_BYTES]

    def text(self) -> str:
        return bytes(self.buf[-_TAIL_BYTES:]).decode("utf-8", "replace")[-TAIL_CHARS:]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _drain(sel: selectors.BaseSelector, tails: dict[int, _Tail], clock: Clock) -> None:
    """Collect what the killed group already wrote, without waiting on stray writers."""
    stop = clock.monotonic() + 0.2
    while sel.get_map() and clock.monotonic() < stop and _read_ready(sel, tails, 0):
        pass


def _read_ready(sel: selectors.BaseSelector, tails: dict[int, _Tail], wait: float) -> bool:
    """One select round: read every ready pipe once; False when nothing was ready."""
    ready = sel.select(wait)
    for key, _ in ready:
        fd = int(key.fd)
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if chunk:
            tails[fd].add(chunk)
        else:
            sel.unregister(fd)
    return bool(ready)


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc


def run_shell(ctx: Ctx, cmd: str, timeout_s: float) -> ShellResult:
    """Run one command; timeout_s <= 0 means no deadline. When it ends, every process it
    started ends too (daemons, setsid, double forks): the stderr tail says how many.

    Deadlines use the injected clock's monotonic time, which runs for real even in tests.
    """
    with Containment(ctx.clock) as contain:
        if not contain.active and UNCONTAINED not in ctx.warned:
            ctx.warned.add(UNCONTAINED)
            ctx.events.emit("warn", "shell.uncontained", UNCONTAINED)
        token = contain.token()
        result = _run(ctx, cmd, timeout_s, contain.env(ctx.child_env(), token), contain, token)
        left = contain.close().get(token, 0)
    if not left:
        return result
    note = f"looop: killed {left} background process(es) the command left running\n"
    return replace(result, stderr=(result.stderr + note)[-TAIL_CHARS:])


def _run(
    ctx: Ctx,
    cmd: str,
    timeout_s: float,
    env: dict[str, str],
    contain: Containment,
    token: str,
) -> ShellResult:
    started = ctx.clock.monotonic()
    deadline = started + timeout_s if timeout_s > 0 else None
    proc = subprocess.Popen(
        ["bash", "-c", cmd],
        cwd=ctx.paths.data,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    contain.started(token, proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    tails = {proc.stdout.fileno(): _Tail(), proc.stderr.fileno(): _Tail()}
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    sel = selectors.DefaultSelector()
    for fd in tails:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    timed_out = False
    exited_at: float | None = None
    try:
        while sel.get_map():
            now = ctx.clock.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= _EXIT_GRACE_S:
                break
            wait = 0.1 if exited_at is None else _EXIT_GRACE_S
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            _read_ready(sel, tails, wait)
        if not timed_out:
            # Pipes closed (or a grandchild holds them) — bash itself must still finish in time.
            try:
                left = None if deadline is None else max(0.0, deadline - ctx.clock.monotonic())
                proc.wait(left)
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            _kill_group(proc.pid)
            proc.wait()
            _drain(sel, tails, ctx.clock)
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
    rc = proc.returncode
    return ShellResult(
        exit_code=None if timed_out else _exit_code(rc),
        timed_out=timed_out,
        secs=round(ctx.clock.monotonic() - started, 3),
        stdout=tails[out_fd].text(),
        stderr=tails[err_fd].text(),
    )
