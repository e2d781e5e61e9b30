"""Tending the fleet at the start of a beat: verifies, stale claims, old read tells, aged
sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from looop.core.context import Ctx
from looop.home.config import Config, Knobs
from looop.home.stamps import utc_stamp_ms
from looop.home.store import NotRegular
from looop.home.where import USAGE_WINDOWS
from looop.human.leases import LeaseError, reap_stale, session_alive
from looop.human.tellbox import sweep_consumed
from looop.sessions.state import (
    KEPT,
    Kept,
    Session,
    at_work,
    list_sessions,
    prune_aged,
    settle_dead,
)
from looop.views import outcomes

if TYPE_CHECKING:
    from collections.abc import Collection

    from looop.home.store import Folders
    from looop.loop.windowwork import Quiet
    from looop.loop.world import WorldMemo


class FleetWork(Protocol):
    """What housekeep calls of loop/fleetwork.py, which mypy holds to it."""

    def verify(self, ctx: Ctx, knobs: Knobs, cfg: Config | None, listed: list[Session]) -> None: ...
    def end_generation(self, ctx: Ctx, wid: str) -> None: ...
    def expire_kept(self, ctx: Ctx, knobs: Knobs, live: Collection[str] | None = None) -> None: ...
    def meter(self, ctx: Ctx, cfg: Config | None, knobs: Knobs, listed: list[Session]) -> None: ...
    def tend_windows(
        self, ctx: Ctx, knobs: Knobs, cfg: Config | None, quiet: Quiet | None, listed: list[Session]
    ) -> list[Session] | None: ...
    def ended(
        self,
        ctx: Ctx,
        knobs: Knobs,
        cfg: Config | None,
        listed: list[Session],
        memo: Folders | None,
    ) -> None: ...


def _fleet() -> FleetWork:
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
        live = KEPT | {s.id for s in at_work(listed) if s.alive}  # a running worker: no corpse
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
    return [s for s in listed if s.id not in gone] if gone else listed


def tend_workers(
    ctx: Ctx, cfg: Config | None, knobs: Knobs, listed: list[Session] | None, memo: WorldMemo | None
) -> list[Session] | None:
    """After the listing, each step loaded only for a home that has its work (two or three
    stats for one without workers), an OSError in one said and the beat going on: each
    worker's spend read from its agent CLI's own records into the cost ledger
    (loop/workmeter.py) and the disk bound (loop/diskcheck.py); the usage windows
    (home/usagewindows: a worker that stopped on one marks it, at a reset the stopped workers
    go on and the held starts are made, loop/windowwork); then each worker that ended gets
    its outcome (loop/ended.py). `listed`: the beat's listing (None: it could not list them:
    no worker is measured for the disk bound, none tended, no end recorded this beat);
    `memo`: the pulse's (its marks of output read without a limit, its outcome records).
    The listing as it stands after, for the beat's sessions probe; None when there is none
    or a reset moved a worker since (the probe lists them afresh, the next beat records
    their ends)."""
    work, far = (ctx.paths.data / "resume").is_dir(), ctx.paths.host_workers.is_dir()
    try:
        if work or far:  # workers away: their hosts' bounds are asked (loop/fleetwork)
            _fleet().meter(ctx, cfg, knobs, listed or [])
    except OSError as e:  # the ledger unwritable: said, and the beat goes on
        ctx.events.emit("warn", "worker.meter", f"worker spend not metered this beat: {e}")
    try:
        if listed is not None and (work or (ctx.paths.data / USAGE_WINDOWS).exists()):
            listed = _fleet().tend_windows(ctx, knobs, cfg, memo.quiet if memo else None, listed)
    except OSError as e:
        ctx.events.emit("warn", "worker.window", f"usage windows not tended this beat: {e}")
        listed = None
    try:
        if listed is not None and (ctx.paths.sessions.is_dir() or far):
            _fleet().ended(ctx, knobs, cfg, listed, memo.records if memo else None)
    except OSError as e:
        ctx.events.emit("warn", "fleet.degraded", f"worker outcomes not recorded this beat: {e}")
    return listed


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
