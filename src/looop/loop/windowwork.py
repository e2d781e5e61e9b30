"""Usage windows at the beat (spend/usagewindows): a worker whose screen ends on its provider's
usage-limit message marks its account limited until the reset (a decide on that account then
waits too: wait_for_reset, as for a decide that hit it itself: record); at an account's reset
the workers that stopped on it are continued on their recorded conversations (workers/resume)
and the starts held for it are made.

Loaded by a decide, and by housekeep only for a home with workers or a windows file; a worker's
output tail is read only when its output moved since a beat last read it without a limit in it
(`quiet`, the pulse's memory), and parsed only when it names a limit."""

from __future__ import annotations

import math
from typing import Any

from looop.act.decision import Decision
from looop.act.executor import execute
from looop.act.moves.workers import StartWorker
from looop.core.context import Ctx
from looop.home import logfiles, store, where
from looop.home.config import Config, Knobs
from looop.home.errors import CorruptState, LooopError
from looop.human import schedules
from looop.loop import alerts
from looop.loop.beat import Beat
from looop.sessions.state import Session, SessionError, validate_id
from looop.spend import usagewindows
from looop.spend.limits import Limit, screen_limit
from looop.views.needsinput import LIMIT_TAIL
from looop.workers.ids import PULSE
from looop.workers.resume import read_record, resume_worker
from looop.workers.startrecord import request_from

CONTINUED = (
    "looop started you again on this same conversation: your provider's usage limit stopped "
    "you, and it has reset now. Carry on where you left off; re-check anything that was in "
    "flight."
)


Quiet = dict[str, tuple[str, int]]  # worker id -> (its run, its output's size) read limitless


def tend_windows(
    ctx: Ctx, knobs: Knobs, cfg: Config | None, quiet: Quiet | None, listed: list[Session]
) -> list[Session] | None:
    """Sightings first (a worker that just stopped on a limit), then every reset that came.
    The sessions as `listed` (the beat's listing), for the beat's sessions
    probe (one listing a beat); None when a reset continued or started a worker (the probe
    lists them afresh)."""
    data = str(ctx.paths.data)
    sessions = [s for s in listed if s.id != PULSE]
    seen = usagewindows.seen_runs(data)
    for s in sessions:
        if seen.get(s.id) != str(s.started_at):  # one run's message is one sighting
            _sight(ctx, cfg, s, quiet)
    if quiet is not None:  # a gone worker's mark goes with it
        for gone in quiet.keys() - {s.id for s in sessions}:
            del quiet[gone]
    if not (ctx.paths.data / usagewindows.FILE).exists():
        return listed
    usagewindows.forget_runs(data, (s.id for s in sessions))
    moved = _resets(ctx, knobs, cfg, {s.id: s for s in sessions})
    return None if moved else listed


def _limit_of(ctx: Ctx, s: Session, quiet: Quiet | None) -> Limit | None:
    # the same run at the same logical size holds the same tail: no limit in it then, none now
    mark = (str(s.started_at), s.output_bytes)
    if quiet is not None and quiet.get(s.id) == mark:
        return None
    try:
        raw = logfiles.tail(str(s.dir), LIMIT_TAIL)
    except OSError:
        return None
    if b"limit" not in raw.lower():
        if quiet is not None:  # the tail read reaches at least to the size listed
            quiet[s.id] = mark
        return None  # the usual case: nothing parsed
    return screen_limit(raw, ctx.clock)


def _sight(ctx: Ctx, cfg: Config | None, s: Session, quiet: Quiet | None) -> None:
    """A worker run seen stopped on a limit: its account marked."""
    data = str(ctx.paths.data)
    limit = _limit_of(ctx, s, quiet)
    if limit is None:
        return
    try:
        rec = read_record(ctx, s.id)
    except LooopError:
        return  # its record is unreadable: it could not be continued anyway
    if rec is None:
        return
    acct = usagewindows.account_of(rec.runner, rec.cli or "", ctx.env)
    now, by = ctx.clock.now(), f"worker {s.id}"
    w, new = usagewindows.mark(
        data, acct, limit.reset, limit.said, by, now, run=(s.id, str(s.started_at))
    )
    if new:
        until = ctx.clock.offset_stamp_at(w.until)
        ctx.events.emit(
            "warn",
            "worker.window",
            f"worker {s.id} stopped on its usage limit ({limit.said}): account {w.runner} "
            f"({w.who}) is limited until {until} — "
            + (
                "new starts on it are held"
                if w.confirmed
                else "it alone is held until another source (a decide, a second worker) confirms it"
            )
            + ", and looop continues it at the reset",
            worker=s.id,
            until=int(w.until),
        )
        ctx.events.record("window_seen", runner=rec.runner, until=int(w.until), by=by)
    if w.confirmed:  # a lone worker's screen (its own print, maybe) holds only itself
        _decider_waits(ctx, cfg, acct.key, limit)


def _decider_waits(ctx: Ctx, cfg: Config | None, key: str, limit: Limit) -> None:
    """A worker saw the limit on the decider's own account: the decide waits for the reset
    as if it had seen it itself (one wait, its schedule the wake)."""
    r = cfg.runner(None) if cfg is not None else None
    if r is None or usagewindows.account_of(r.name, r.tick or "", ctx.env).key != key:
        return
    if alerts.limit_waiting(ctx) is None:
        wait_for_reset(ctx, cfg, limit, r.name, None)


def _resets(ctx: Ctx, knobs: Knobs, cfg: Config | None, sessions: dict[str, Session]) -> bool:
    """Each window whose reset came: lifted, its stopped workers continued, its starts made;
    True when one came."""
    data, now = str(ctx.paths.data), ctx.clock.now()
    try:
        due = [w for w in usagewindows.read_windows(data) if w.until <= now]
    except CorruptState as e:
        if ctx.first_time(str(e)):
            ctx.events.emit("warn", "worker.window", str(e))
        return False
    if not due:
        return False
    held, bad = usagewindows.read_held(data)
    for line in bad:  # the others go on without it
        if ctx.first_time(line):
            ctx.events.emit("warn", "worker.window", line)
    seen = usagewindows.seen_runs(data)
    usagewindows.lift(data, (w.key for w in due))  # first: the starts below are not held again
    for w in due:
        ctx.events.record("window_reset", runner=w.runner, stopped=w.stopped)
        for wid in w.stopped:
            s = sessions.get(wid)
            # the same run, not killed by a human nor started again since
            if s is not None and s.state != "killed" and seen.get(wid) == str(s.started_at):
                _continue(ctx, knobs, cfg, wid)
        for h in held:
            if h["key"] == w.key:
                _make(ctx, knobs, cfg, h)
    return True


def _continue(ctx: Ctx, knobs: Knobs, cfg: Config | None, wid: str) -> None:
    try:
        validate_id(wid)
        resume_worker(ctx, knobs, wid, cfg, why=CONTINUED)
    except (LooopError, SessionError, OSError) as e:
        ctx.events.emit(
            "warn",
            "worker.window",
            f"worker {wid} stopped on its usage limit and was not continued at the reset: {e}",
            worker=wid,
        )


def _make(ctx: Ctx, knobs: Knobs, cfg: Config | None, held: dict[str, Any]) -> None:
    """A held start made now as the move it was (its shell gate again, journaled), by the
    pulse for the decider's, else as a human's; a new window holds it again, a refusal is
    said."""
    wid = str(held["id"])
    usagewindows.unhold(str(ctx.paths.data), wid)  # the start holds itself again if it must
    try:
        req = request_from(held["request"])
        move = StartWorker(
            id=req.worker, prompt=req.brief, runner=req.runner, command=req.command,
            verify=req.verify, sandbox=req.sandbox, repo=req.repo, branch=req.branch,
            resume=req.resume, host=req.host, steerable=req.steerable,
        )  # fmt: skip
        note = f"the start of {wid} held for its account's usage window, made at the reset"
        actor = "pulse" if req.decided else "cli"
        done = execute(ctx, knobs, Decision(move, journal=note), actor=actor, cfg=cfg)
    except (LooopError, OSError) as e:
        ctx.events.emit(
            "warn", "worker.window", f"worker {wid}: its held start failed at the reset: {e}"
        )
        return
    ctx.events.emit("info", "worker.window", f"worker {wid}: {done.summary}")


def record(b: Beat, limit: Limit, runner: str) -> str:
    """A decide hit its runner's usage limit: keep the limit and its wake, mark the runner's
    account for the fleet until the reset; say it once. Returns the one-line message."""
    r, ctx = b.runner, b.ctx
    if r is not None:
        acct = usagewindows.account_of(r.name, r.tick or "", ctx.env)
        now = ctx.clock.now()
        _, new = usagewindows.mark(
            str(ctx.paths.data), acct, limit.reset, limit.said, "decide", now
        )
        if new:
            ctx.events.record("window_seen", runner=r.name, until=int(limit.reset), by="decide")
    return wait_for_reset(ctx, b.cfg, limit, runner, b.out.run_id)


def wait_for_reset(
    ctx: Ctx, cfg: Config | None, limit: Limit, runner: str, run_id: str | None
) -> str:
    """The decider's wait and its wake (a decide saw the limit, or a worker on its account)."""
    now = ctx.clock.now()
    until = ctx.clock.offset_stamp_at(limit.reset)
    note = (
        f"looop: runner {runner} hit its provider usage limit; it resets now, so looop "
        "calls it again. Drop this schedule once read."
    )
    rec = schedules.build(ctx.clock, in_s=max(1, math.ceil(limit.reset - now)), note=note)
    schedules.write(ctx.paths.schedules, where.LIMIT_SCHEDULE, rec)
    store.write_json(
        alerts.limit_path(ctx.paths),
        {
            "v": 1,
            "runner": runner,
            "since": int(now),
            "until": int(rec["at"]),
            "said": limit.said,
            "run_id": run_id,
        },
    )
    msg = (
        f"runner {runner} hit its usage limit ({limit.said}) — no calls until {until}; "
        f"`looop schedule drop {where.LIMIT_SCHEDULE}` retries sooner"
    )
    ctx.events.emit("warn", "tick.limited", msg, runner=runner, until=int(rec["at"]))
    ctx.events.record("provider_limited", runner=runner, until=int(rec["at"]), said=limit.said)
    alerts.raise_alert(ctx, alerts.LIMIT_ALERT, msg, cfg)
    return msg
