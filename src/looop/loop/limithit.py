"""A runner that just hit its provider's usage limit (loop/limited.py): the wait recorded, a
one-shot schedule at its reset, the human told once, and its account marked limited for the
whole fleet (home/usagewindows: starts on it are held until the reset). Only the decide path
and the beat's usage-window work import this (cron parsing, the limit parser): a skip beat
reads the wait through loop/limited alone."""

from __future__ import annotations

import math

from looop.core.context import Ctx
from looop.home import store
from looop.home.config import Config, Runner
from looop.human import schedules
from looop.loop import alerts, limited
from looop.loop.beat import Beat
from looop.spend import usagewindows
from looop.spend.limits import Limit


def record(b: Beat, limit: Limit, runner: str) -> str:
    """Keep the limit and its wake, mark the runner's account; say it once. Returns the
    one-line message."""
    if b.runner is not None:
        mark_account(b.ctx, b.runner, limit, "decide")
    return wait_for_reset(b.ctx, b.cfg, limit, runner, b.out.run_id)


def mark_account(ctx: Ctx, r: Runner, limit: Limit, seen_by: str) -> None:
    """The decider's account limited for the fleet until the reset."""
    acct = usagewindows.account_of(r.name, r.tick or "", ctx.env)
    now = ctx.clock.now()
    _, new = usagewindows.mark(str(ctx.paths.data), acct, limit.reset, limit.said, seen_by, now)
    if new:
        ctx.events.record("window_seen", runner=r.name, until=int(limit.reset), by=seen_by)


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
    schedules.write(ctx.paths.schedules, limited.SCHEDULE, rec)
    store.write_json(
        limited.limit_path(ctx.paths),
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
        f"`looop schedule drop {limited.SCHEDULE}` retries sooner"
    )
    ctx.events.emit("warn", "tick.limited", msg, runner=runner, until=int(rec["at"]))
    ctx.events.record("provider_limited", runner=runner, until=int(rec["at"]), said=limit.said)
    alerts.raise_alert(ctx, limited.ALERT_KEY, msg, cfg)
    return msg
