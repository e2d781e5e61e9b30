"""The beat's work on a fleet (loop/housekeep.py's one door): a data dir's pending verifies
(run here, or on the host a remote worker ran on), the end of an aged-out worker's generation,
and each worker's spend metered. Loaded only where there are workers or verify commands, so a
data dir that never started a worker never pays for the shell runner, the worker machinery or
the spend meter this imports."""

from __future__ import annotations

from looop.act.shell import run_shell
from looop.core.context import Ctx
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.loop import diskcheck
from looop.loop.ended import promote_proposed, record_ends, record_far_ends
from looop.loop.windowwork import Quiet, tend_windows
from looop.loop.workmeter import meter_beat
from looop.sessions.state import Session, list_sessions
from looop.workers.kepttrees import expire_kept
from looop.workers.launch import end_generation
from looop.workers.verify import RunFar, run_pending_verifies


class FleetWork:
    """What a beat does to its workers beyond the light tending every beat does."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def verify(self, knobs: Knobs, cfg: Config | None) -> None:
        """Run verify post-conditions of dead workers; the beat hands verify its shell runner
        and the far one (workers sit below act and remote)."""
        ctx = self.ctx
        sessions = list_sessions(ctx.paths.data)
        sandbox = _shell_sandbox(ctx, cfg)
        far: RunFar | None = None
        if (ctx.paths.host_workers).is_dir():
            # lazy: the remote wing (SSH and Kubernetes, ~85-210 ms), for remote workers only
            from looop.remote.wing import run_far

            far = run_far
        run_pending_verifies(ctx, knobs, sessions, run_shell, sandbox, far)

    def expire_kept(self, knobs: Knobs) -> None:
        """Kept dirty worktrees past worktree_keep_days: warned, their work saved, removed."""
        expire_kept(self.ctx, knobs)

    def end(self, sid: str) -> None:
        """A worker's corpse aged out: its id may be reused, with nothing of this generation."""
        end_generation(self.ctx, sid)

    def meter(self, cfg: Config | None, knobs: Knobs | None) -> None:
        """Each worker's spend read from its agent CLI's own records (loop/workmeter.py)."""
        meter_beat(self.ctx, cfg, knobs)
        diskcheck.check(self.ctx, knobs if knobs is not None else self.ctx.knobs())

    def ended(self, knobs: Knobs, cfg: Config | None) -> None:
        """Each worker that ended since the last beat: its outcome recorded (loop/ended.py)."""
        if self.ctx.paths.sessions.is_dir():
            record_ends(self.ctx, knobs, cfg)
        promote_proposed(self.ctx)  # a pull request merged since
        if self.ctx.paths.host_workers.is_dir():
            record_far_ends(self.ctx, knobs, cfg)

    def windows(
        self, knobs: Knobs, cfg: Config | None, quiet: Quiet | None
    ) -> list[Session] | None:
        """Usage windows: workers seen stopped on a limit, and each reset's work; the
        sessions as listed (None when a reset moved one)."""
        return tend_windows(self.ctx, knobs, cfg, quiet)


def _shell_sandbox(ctx: Ctx, cfg: Config | None) -> SandboxPolicy | None:
    """shell_policy's sandbox, which a decision's verify runs under; None: no config to say."""
    try:
        return (cfg if cfg is not None else ctx.config()).shell_policy.sandbox
    except LooopError:
        return None
