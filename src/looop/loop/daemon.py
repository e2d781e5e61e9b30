"""`looop up` / `looop down` / bare `looop`: the pulse runs as the session `pulse`."""

from __future__ import annotations

import os
import select
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field

from looop.core import store
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.where import runtime_base
from looop.loop.status import beat_holder, pulse_pid
from looop.seed import ensure_data_dir
from looop.sessions import SessionError, get_session, kill, list_sessions, spawn, wait
from looop.sessions.host import stop_host

PULSE = "pulse"
READY_TIMEOUT_SECS = 15.0
PULSE_SIZE = (160, 50)


@dataclass(frozen=True)
class UpResult:
    started: bool
    pid: str
    log: str
    # workers started again on their conversation: (id, None) or (id, why it could not)
    resumed: tuple[tuple[str, str | None], ...] = ()


def pulse_log(ctx: Ctx) -> str:
    return str(ctx.paths.sessions / PULSE / "output.log")


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


def start_detached(ctx: Ctx, json_log: bool = False, color: bool = False) -> UpResult:
    """Start the pulse session unless a pulse holds the lock; two concurrent calls start one."""
    ensure_data_dir(ctx.paths)
    with store.dir_lock(ctx.paths.lock_dir / "up"):
        holder = beat_holder(ctx.paths)
        if holder is not None and holder[0] == "tick":
            raise LooopError(
                f"a foreground `looop tick` holds the beat (pid {holder[1]}) — start the "
                "pulse once it has finished"
            )
        if holder is None:
            preflight(ctx)
        # before the pulse's first beat, which would call their asks STRANDED
        resumed = _resume_workers(ctx)
        if holder is not None:
            # attaching to a running pulse needs no runner on this shell's PATH
            return UpResult(False, holder[1], pulse_log(ctx), resumed)
        env = ctx.child_env(
            {
                "LOOOP_LOG_FORMAT": "json" if json_log else "human",
                "LOOOP_COLOR": "1" if color else "0",
            }
        )
        try:
            spawn(
                ctx.paths.data,
                PULSE,
                [sys.executable, "-m", "looop", "pulse"],
                cwd=ctx.paths.data,
                env=env,
                size=PULSE_SIZE,
                host_idle_s=ctx.knobs().real("session_host_idle"),
                log_cap=ctx.knobs().log_cap(),
            )
        except SessionError as e:
            raise LooopError(f"the pulse did not start: {e}") from e
        deadline = ctx.clock.monotonic() + READY_TIMEOUT_SECS
        while ctx.clock.monotonic() < deadline:
            if store.flock_held(ctx.paths.lock_file):
                return UpResult(True, pulse_pid(ctx.paths), pulse_log(ctx), resumed)
            try:
                alive = get_session(ctx.paths.data, PULSE).alive
            except SessionError:
                alive = False
            if not alive:
                break
            select.select([], [], [], 0.05)  # the pulse takes its lock within milliseconds
        tail = store.tail_lines(ctx.paths.sessions / PULSE / "output.log", 1)
        why = tail[-1] if tail else "no output"
        raise LooopError(f"the pulse did not start: {why} — see {pulse_log(ctx)}")


def _resume_workers(ctx: Ctx) -> tuple[tuple[str, str | None], ...]:
    """Workers with the `resume` policy whose session died without an end start again."""
    from looop.workers.resume import resume_dead  # lazy: only `up` resumes workers

    try:
        return tuple(resume_dead(ctx, ctx.knobs()))
    except (LooopError, OSError) as e:  # an unreadable fleet: the pulse still starts
        return (("*", f"workers not resumed: {e}"),)


@dataclass
class DownResult:
    was_running: bool = False
    pid: str = ""
    forced: bool = False
    workers: list[str] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)
    survivors_far: list[str] = field(default_factory=list)  # one line per remote worker left
    tick_pid: str = ""  # a foreground `looop tick` holding the beat (left to finish)
    kept: list[str] = field(default_factory=list)  # live workers left running on purpose


def stop_all(ctx: Ctx, grace_s: float = 30.0, keep_workers: bool = False) -> DownResult:
    """Pulse first (so it cannot start a worker during the sweep), then every worker (unless
    keep_workers), then audit."""
    res = DownResult()
    holder = beat_holder(ctx.paths)
    if holder is not None and holder[0] == "tick":
        res.tick_pid = holder[1]  # a human's one beat: it ends on its own
    elif holder is not None:
        res.was_running, res.pid = True, holder[1]
        res.forced = not _stop_pulse(ctx, res.pid, grace_s)
        _await_session_end(ctx, PULSE, 5.0)  # its supervisor drains and records the exit
    if keep_workers:
        res.kept = [s.id for s in list_sessions(ctx.paths.data) if s.id != PULSE and s.alive]
        ctx.events.record("down", pulse=res.was_running, workers=[], kept=res.kept)
        return res
    for s in list_sessions(ctx.paths.data):
        if s.id == PULSE or not s.alive:
            continue
        try:
            kill(ctx.paths.data, s.id)
            res.workers.append(s.id)
        except SessionError:
            pass  # it finished on its own meanwhile
    if os.path.isdir(ctx.paths.data / "hosts" / "workers"):
        from looop.workers.remote import kill_all  # lazy: only a fleet with hosts

        far, failed = kill_all(ctx)
        res.workers += far
        res.survivors_far = failed
    res.survivors = [s.id for s in list_sessions(ctx.paths.data) if s.alive]
    # No session depends on the session host: with the fleet down this home's goes too (the
    # next start brings one up again); other data dirs' hosts are theirs.
    stop_host(runtime_base(ctx.env), str(ctx.paths.data))
    ctx.events.record("down", pulse=res.was_running, workers=res.workers, survivors=res.survivors)
    return res


def _await_session_end(ctx: Ctx, sid: str, secs: float) -> None:
    try:
        wait(ctx.paths.data, sid, secs, ctx.clock)
    except SessionError:
        pass  # no such session (a foreground `looop pulse`): nothing to wait for


def _stop_pulse(ctx: Ctx, pid_s: str, grace_s: float) -> bool:
    """SIGTERM: the pulse finishes its beat. True if it stopped within the grace period."""
    if not pid_s.isdigit():
        raise LooopError(
            f"a pulse holds {ctx.paths.lock_file} but {ctx.paths.pid_file} names no "
            "pid — stop it by hand (fuser -k on the lock file)"
        )
    pid = int(pid_s)
    _signal(pid, signal.SIGTERM)
    if _await_exit(ctx, pid, grace_s):
        return True
    try:
        if get_session(ctx.paths.data, PULSE).alive:
            kill(ctx.paths.data, PULSE)
    except SessionError:
        pass
    _signal(pid, signal.SIGKILL)
    if not _await_exit(ctx, pid, 5.0):
        raise LooopError(f"pulse pid {pid} survived SIGKILL — check it with `ps {pid}`")
    return False


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
    # the lock dies with the process; a beat in a forked child cannot hold it
    return not store.flock_held(ctx.paths.lock_file)
