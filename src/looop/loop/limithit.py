"""A runner that just hit its provider's usage limit (loop/limited.py): the wait recorded, a
one-shot schedule at its reset, the human told once. Only the decide path imports this (cron
parsing, the limit parser): a skip beat reads the wait through loop/limited alone."""

from __future__ import annotations

import math

from looop.home import store
from looop.home.limits import Limit, find_limit
from looop.human import schedules
from looop.loop import alerts, limited
from looop.loop.beat import Beat


def find(b: Beat, text: str) -> Limit | None:
    return find_limit(text, b.ctx.clock.now(), b.ctx.clock.zone())


def record(b: Beat, limit: Limit, runner: str) -> str:
    """Keep the limit and its wake; say it once. Returns the one-line message."""
    ctx, now = b.ctx, b.ctx.clock.now()
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
            "run_id": b.out.run_id,
        },
    )
    msg = (
        f"runner {runner} hit its usage limit ({limit.said}) — no calls until {until}; "
        f"`looop schedule drop {limited.SCHEDULE}` retries sooner"
    )
    ctx.events.emit("warn", "tick.limited", msg, runner=runner, until=int(rec["at"]))
    ctx.events.record("provider_limited", runner=runner, until=int(rec["at"]), said=limit.said)
    alerts.raise_alert(ctx, limited.ALERT_KEY, msg, b.cfg)
    return msg
