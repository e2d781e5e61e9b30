"""Tending the fleet at the start of a beat: verifies, stale claims, old read tells, aged
sessions."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from looop.core.context import Ctx
from looop.home import where
from looop.home.config import Config, Knobs
from looop.home.stamps import utc_stamp_ms
from looop.home.store import Folders, NotRegular
from looop.home.where import USAGE_WINDOWS
from looop.human.leases import LeaseError, reap_stale, session_alive
from looop.human.tellbox import sweep_consumed
from looop.sessions.state import KEPT, Kept, Session, list_sessions, prune_aged, settle_dead
from looop.views import outcomes

if TYPE_CHECKING:
    from looop.loop.windowwork import Quiet


def _fleet() -> ModuleType:
    """housekeep's one door, for a beat that has workers or verify work: the shell runner,
    the worker machinery and the spend meter (loop/fleetwork.py)."""
    # A data dir that never started a worker and holds no verify command never loads it.
    # lazy: the worker machinery, for a data dir with workers or verify commands only
    import looop.loop.fleetwork as fleetwork

    return fleetwork


def housekeep_sessions(
    ctx: Ctx, knobs: Knobs, cfg: Config | None = None, kept: Kept | None = None
) -> list[Session] | None:
    """Reap corpses past their retention, then run verify post-conditions of dead workers
    (`cfg`: the beat's config; None reads the file, an unreadable one runs no decision's
    verify). The beat's one listing of its sessions, as these steps left them, for the rest of
    the beat (each worker's status read once a beat, a finished one in `kept`, the pulse's
    memory, not at all); None when they could not be listed."""
    try:
        listed = list_sessions(ctx.paths.data, kept)
        if ctx.paths.verify.is_dir():  # before any reaping
            _fleet().verify(ctx, knobs, cfg, listed)
        settled = settle_dead(listed, utc_stamp_ms(ctx.clock.now()))
        for sid in settled:
            ctx.events.emit(
                "warn",
                "session.dead",
                f"session {sid}: its supervisor died without recording an end; marked killed "
                f"(exit 137) — `looop log {sid}` shows its last output",
                session=sid,
            )
            ctx.events.record("session_dead", id=sid)
        _reap_claims(ctx)
        _sweep_tells(ctx, float(knobs.num("tells_consumed_keep_secs")))
        live = KEPT | {s.id for s in listed if s.alive}  # a running worker is no corpse
        ttl = float(knobs.num("session_ttl"))
        gone = prune_aged(ctx.paths.data, ttl, ctx.clock.now(), live, kept)
        for sid in gone:
            _fleet().end_generation(ctx, sid)
            outcomes.forget(str(ctx.paths.data), sid)  # a stalled one's stays: a human clears it
            ctx.events.record("session_reaped", id=sid)
        if ctx.paths.worktrees.is_dir():  # a reaped worker's dirty worktree: warned, saved, gone
            _fleet().expire_kept(ctx, knobs, live)
    except OSError as e:
        ctx.events.emit("warn", "fleet.degraded", f"could not tend sessions: {e}")
        return None
    # a settled worker's status changed: listed again (rare); a pruned one is gone
    if settled:
        return list_sessions(ctx.paths.data, kept)
    return [s for s in listed if s.id not in gone]


def meter_workers(ctx: Ctx, cfg: Config | None, knobs: Knobs, listed: list[Session] | None) -> None:
    """Each worker's spend read from its agent CLI's own records into the cost ledger
    (loop/workmeter.py) and the disk bound (loop/diskcheck.py); a data dir that never started
    a worker pays two stats. `listed`: the beat's listing (None: it could not list them, so
    no worker is measured for the disk bound this beat)."""
    data = ctx.paths.data
    if not (data / "resume").is_dir() and not (data / where.HOSTS / where.HOST_WORKERS).is_dir():
        return  # workers away: their hosts' bounds are asked (loop/fleetwork)
    try:
        _fleet().meter(ctx, cfg, knobs, listed if listed is not None else [])
    except OSError as e:  # the ledger unwritable: said, and the beat goes on
        ctx.events.emit("warn", "worker.meter", f"worker spend not metered this beat: {e}")


def usage_windows(
    ctx: Ctx, cfg: Config | None, knobs: Knobs, quiet: Quiet | None, listed: list[Session] | None
) -> list[Session] | None:
    """Accounts at their usage limit (home/usagewindows): a worker that stopped on one marks
    it; at a reset the stopped workers go on and the held starts are made. Two stats for a
    home without workers. `listed` (the beat's listing) as it stands after, for the beat's
    sessions probe (None: none listed, or listed before a reset moved a worker); `quiet`: the
    pulse's marks of output already read without a limit (loop/windowwork)."""
    data = ctx.paths.data
    if not (data / "resume").is_dir() and not (data / USAGE_WINDOWS).exists():
        return listed
    try:
        after: list[Session] | None = _fleet().tend_windows(ctx, knobs, cfg, quiet, listed)
    except OSError as e:
        ctx.events.emit("warn", "worker.window", f"usage windows not tended this beat: {e}")
        return None
    return after


def worker_ends(
    ctx: Ctx, cfg: Config | None, knobs: Knobs, listed: list[Session] | None, memo: Folders | None
) -> None:
    """Each worker that ended gets its outcome, after verifies, the meter and the usage
    windows said what they found of it (loop/ended.py); two stats for a home without
    sessions or workers away. `listed`: the beat's listing (None: it could not list them, or
    a usage window's reset moved a worker since: the next beat records their ends); `memo`:
    the pulse's memory of the outcome records (home/store.json_objects)."""
    if listed is None or (not ctx.paths.sessions.is_dir() and not ctx.paths.host_workers.is_dir()):
        return
    try:
        _fleet().ended(ctx, knobs, cfg, listed, memo)
    except OSError as e:
        ctx.events.emit("warn", "fleet.degraded", f"worker outcomes not recorded this beat: {e}")


def _reap_claims(ctx: Ctx) -> None:
    """Leases whose holder is gone released; a claims/ a box made a symlink is said once."""
    try:
        gone = reap_stale(ctx.paths.claims, session_alive(ctx.paths.data))
    except LeaseError as e:
        if ctx.first_time(str(e)):
            ctx.events.emit("warn", "box.refused", str(e))
        return
    for claim_file, holder in gone:
        ctx.events.emit(
            "info",
            "claim.reaped",
            f"released {claim_file}: holder '{holder or '?'}' is gone",
            claim=claim_file,
            session=holder,
        )
        ctx.events.record("claim_reaped", claim=claim_file, session=holder)


def _sweep_tells(ctx: Ctx, keep: float) -> None:
    """Tells read long ago deleted; a tells/consumed a box made a symlink is said once (what
    it points at is never touched)."""
    try:
        swept = sweep_consumed(ctx.paths.tells, keep, ctx.clock.now())
    except NotRegular as e:
        msg = f"{e.strerror} — remove it; old tells are not swept meanwhile"
        if ctx.first_time(msg):
            ctx.events.emit("warn", "box.refused", msg)
        return
    if swept:
        ctx.events.record("tells_swept", ids=swept)
