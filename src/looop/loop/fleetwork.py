"""The beat's work on a fleet (loop/housekeep.py's one door): a data dir's pending verifies
(run here, or on the host a remote worker ran on), the end of an aged-out worker's generation,
and each worker's spend metered. Loaded only where there are workers or verify commands, so a
data dir that never started a worker never pays for the shell runner, the worker machinery,
the spend meter or the remote wing (SSH and Kubernetes, for workers away) this imports."""

from __future__ import annotations

from looop.act.shell import run_shell
from looop.core.context import Ctx
from looop.home import where
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.home.store import Folders, json_objects
from looop.loop import diskcheck
from looop.loop.ended import promote_proposed, record_ends, record_far_ends
from looop.loop.windowwork import tend_windows as tend_windows
from looop.loop.workmeter import meter_beat
from looop.remote.wing import check_bounds, run_far
from looop.sessions.state import Session, at_work
from looop.views import outcomes
from looop.workers.ids import PULSE
from looop.workers.kepttrees import expire_kept as expire_kept
from looop.workers.verify import RunFar, run_pending_verifies
from looop.workers.worktree import end_generation as end_generation


def verify(ctx: Ctx, knobs: Knobs, cfg: Config | None, listed: list[Session]) -> None:
    """Run verify post-conditions of dead workers under shell_policy's sandbox (None: no
    config to say); the beat hands verify its shell runner and the far one (workers sit
    below act and remote)."""
    try:
        sandbox = (cfg if cfg is not None else ctx.config()).shell_policy.sandbox
    except LooopError:
        sandbox = None
    far: RunFar | None = run_far if ctx.paths.host_workers.is_dir() else None
    run_pending_verifies(ctx, knobs, listed, run_shell, sandbox, far)


def meter(ctx: Ctx, cfg: Config | None, knobs: Knobs, listed: list[Session]) -> None:
    """Each worker's spend read from its agent CLI's own records (loop/workmeter.py), and
    the disk bound on the live workers of `listed` (the beat's listing, loop/diskcheck.py) and
    on those away (their SSH hosts measure and hold them: remote/ssh/backend)."""
    meter_beat(ctx, cfg, knobs)
    if ctx.paths.host_workers.is_dir():
        check_bounds(ctx, knobs)
    diskcheck.check(ctx, knobs, [s.id for s in at_work(listed) if s.alive and s.id != PULSE])


def ended(
    ctx: Ctx, knobs: Knobs, cfg: Config | None, listed: list[Session], memo: Folders | None = None
) -> None:
    """Each worker that ended since the last beat: its outcome recorded (loop/ended.py), of
    `listed` (the beat's listing), the outcome records read once (`memo`: the pulse's)."""
    data = str(ctx.paths.data)
    recs = json_objects(where.join(data, outcomes.OUTCOMES), memo)
    if ctx.paths.sessions.is_dir():
        record_ends(ctx, knobs, cfg, listed, recs)
    promote_proposed(ctx, recs)  # a pull request merged since
    if ctx.paths.host_workers.is_dir():
        record_far_ends(ctx, knobs, cfg, recs, memo)
