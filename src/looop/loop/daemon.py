"""`looop up` / `looop down`: the pulse as a detached background process."""

from __future__ import annotations

import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

from looop.core import store
from looop.core.clock import Clock
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.seed import ensure_data_dir

READY_TIMEOUT_SECS = 15.0


@dataclass(frozen=True)
class UpResult:
    started: bool
    pid: str
    log: str


def pulse_log(ctx: Ctx) -> str:
    return str(ctx.paths.data / "pulse.log")


def preflight(ctx: Ctx) -> None:
    """Refuse to start a pulse whose runner cannot possibly run."""
    cfg = ctx.config()
    r = cfg.runner()
    if r is None or not r.tick:
        raise LooopError(f"no tick command configured in {cfg.source} — run `looop init`")
    try:
        words = shlex.split(r.tick)
    except ValueError as e:
        raise LooopError(
            f"runner '{r.name}' tick command does not parse ({e}) — fix it in "
            f"{cfg.source} or run `looop init`"
        ) from None
    words = [w for w in words if "=" not in w.split("/")[0]] or [""]
    exe = words[0]
    if exe.startswith("$") or exe in ("env", "bash", "sh"):
        return
    if shutil.which(exe, path=ctx.child_env().get("PATH")) is None:
        raise LooopError(
            f"runner '{r.name}' needs `{exe}`, which is not on PATH — install it "
            "or choose another runner with `looop init`"
        )


def start_detached(ctx: Ctx, json_log: bool = False) -> UpResult:
    ensure_data_dir(ctx.paths)
    preflight(ctx)
    with store.dir_lock(ctx.paths.lock_dir / "up"):  # two concurrent `up`s start one pulse
        if store.flock_held(ctx.paths.lock_file):
            pid = (store.read_text(ctx.paths.pid_file) or "").strip()
            return UpResult(False, pid, pulse_log(ctx))
        r, w = os.pipe()
        env = ctx.child_env(
            {"LOOOP_LOG_FORMAT": "json" if json_log else "human", "LOOOP_COLOR": "0"}
        )
        with open(pulse_log(ctx), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "looop", "pulse", "--ready-fd", str(w)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ctx.paths.data,
                env=env,
                pass_fds=(w,),
                start_new_session=True,
            )
        os.close(w)
        try:
            ready = _read_ready(ctx.clock, r, READY_TIMEOUT_SECS)
        finally:
            os.close(r)
        if not ready:
            code = proc.poll()
            tail = store.tail_lines(ctx.paths.data / "pulse.log", 1)
            why = tail[-1] if tail else "no output"
            state = f"exited {code}" if code is not None else "no readiness signal"
            raise LooopError(f"the pulse did not start ({state}): {why} — see {pulse_log(ctx)}")
        return UpResult(True, str(proc.pid), pulse_log(ctx))


def _read_ready(clock: Clock, fd: int, timeout: float) -> bool:
    deadline = clock.monotonic() + timeout
    buf = b""
    while clock.monotonic() < deadline:
        rl, _, _ = select.select([fd], [], [], max(0.0, deadline - clock.monotonic()))
        if not rl:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        buf += chunk
        if b"\n" in buf:
            return buf.startswith(b"ok")
    return False


@dataclass(frozen=True)
class DownResult:
    was_running: bool
    pid: str
    forced: bool


def stop_pulse(ctx: Ctx, grace_s: float = 30.0) -> DownResult:
    """SIGTERM (the pulse finishes its beat), then SIGKILL after the grace period."""
    if not store.flock_held(ctx.paths.lock_file):
        return DownResult(False, "", False)
    pid_s = (store.read_text(ctx.paths.pid_file) or "").strip()
    if not pid_s.isdigit():
        raise LooopError(
            f"a pulse holds {ctx.paths.lock_file} but {ctx.paths.pid_file} names no "
            "pid — stop it by hand (fuser -k on the lock file)"
        )
    pid = int(pid_s)
    _signal(pid, signal.SIGTERM)
    if _await_exit(ctx, pid, grace_s):
        return DownResult(True, pid_s, False)
    _signal(pid, signal.SIGKILL)
    if not _await_exit(ctx, pid, 5.0):
        raise LooopError(f"pulse pid {pid} survived SIGKILL — check it with `ps {pid}`")
    return DownResult(True, pid_s, True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _await_exit(ctx: Ctx, pid: int, secs: float) -> bool:
    """Wait on a pidfd for the pulse to exit, then confirm the kernel dropped its lock."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return not store.flock_held(ctx.paths.lock_file)
    try:
        select.select([fd], [], [], secs)
    finally:
        os.close(fd)
    return not store.flock_held(ctx.paths.lock_file)
