"""Tending the fleet at the start of a beat: verifies, stale claims, old read tells, aged
sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.core.context import Ctx
from looop.hot.config import Config, Knobs
from looop.hot.errors import LooopError
from looop.hot.leases import reap_stale, session_alive
from looop.hot.sandboxpolicy import SandboxPolicy
from looop.hot.stamps import utc_stamp_ms
from looop.hot.tellbox import sweep_consumed
from looop.sessions.state import list_sessions, prune_aged, settle_dead
from looop.workers.sandbox import WorkerBox

if TYPE_CHECKING:
    from looop.act.shell import ShellResult


def _run_shell(
    ctx: Ctx, cmd: str, timeout_s: float, sandbox: SandboxPolicy | WorkerBox | None = None
) -> ShellResult:
    from looop.act.shell import run_shell  # lazy: a skip beat runs no verify command

    return run_shell(ctx, cmd, timeout_s, sandbox)


def _shell_sandbox(ctx: Ctx, cfg: Config | None) -> SandboxPolicy | None:
    """shell_policy's sandbox, which a decision's verify runs under; None: no config to say."""
    try:
        return (cfg if cfg is not None else ctx.config()).shell_policy.sandbox
    except LooopError:
        return None


def housekeep_sessions(ctx: Ctx, knobs: Knobs, cfg: Config | None = None) -> None:
    """Reap corpses past their retention, then run verify post-conditions of dead workers
    (`cfg`: the beat's config; None reads the file, an unreadable one runs no decision's
    verify)."""
    try:
        # before any reaping; the beat hands verify its shell runner and the far one (workers
        # sit below act and remote)
        if ctx.paths.verify.is_dir():
            # lazy: the worker machinery, for a data dir with verify commands only
            from looop.remote.verify import run_far
            from looop.workers.verify import RunFar, run_pending_verifies

            sessions = list_sessions(ctx.paths.data)
            sandbox = _shell_sandbox(ctx, cfg)
            far: RunFar | None = None
            if (ctx.paths.data / "hosts" / "workers").is_dir():
                far = run_far
            run_pending_verifies(ctx, knobs, sessions, _run_shell, sandbox, far)
        for sid in settle_dead(ctx.paths.data, utc_stamp_ms(ctx.clock.now())):
            ctx.events.emit(
                "warn",
                "session.dead",
                f"session {sid}: its supervisor died without recording an end; marked killed "
                f"(exit 137) — `looop log {sid}` shows its last output",
                session=sid,
            )
            ctx.events.record("session_dead", id=sid)
        for claim_file, holder in reap_stale(ctx.paths.claims, session_alive(ctx.paths.data)):
            ctx.events.emit(
                "info",
                "claim.reaped",
                f"released {claim_file}: holder '{holder or '?'}' is gone",
                claim=claim_file,
                session=holder,
            )
            ctx.events.record("claim_reaped", claim=claim_file, session=holder)
        keep = float(knobs.num("tells_consumed_keep_secs"))
        swept = sweep_consumed(ctx.paths.tells, keep, ctx.clock.now())
        if swept:
            ctx.events.record("tells_swept", ids=swept)
        for sid in prune_aged(ctx.paths.data, float(knobs.num("session_ttl")), ctx.clock.now()):
            from looop.workers.launch import end_generation  # lazy: only a reaped corpse needs it

            end_generation(ctx, sid)
            ctx.events.record("session_reaped", id=sid)
    except OSError as e:
        ctx.events.emit("warn", "fleet.degraded", f"could not tend sessions: {e}")


def meter_workers(ctx: Ctx, cfg: Config | None, knobs: Knobs | None = None) -> None:
    """Each worker's spend read from its agent CLI's own records into the cost ledger
    (loop/workmeter.py); a data dir that never started a worker pays one stat."""
    if not (ctx.paths.data / "resume").is_dir():
        return
    from looop.loop.workmeter import meter_beat  # lazy: only a data dir with workers

    try:
        meter_beat(ctx, cfg, knobs)
    except OSError as e:  # the ledger unwritable: said, and the beat goes on
        ctx.events.emit("warn", "worker.meter", f"worker spend not metered this beat: {e}")
