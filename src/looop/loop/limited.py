"""A runner at its provider's usage limit: wait for the reset, never retry blindly.

When a decide fails and the runner's output names a usage window with a reset time
(decide/limits), the beat records `.provider-limit.json` and a one-shot schedule
`provider-limit` at the reset, the durable wake the user sees in `looop schedule ls` and may
drop (which lifts the wait: the next changed world calls the runner again). No failure is
counted, so no backoff grows meanwhile; the human is notified once. Beats before the reset
make no AI call; the first decide after it is told what happened, once."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from looop.decide.limits import Limit, find_limit
from looop.hot import store, where
from looop.hot.delays import limit_in_force
from looop.hot.errors import CorruptState

SCHEDULE = where.LIMIT_SCHEDULE
FILE = where.PROVIDER_LIMIT
ALERT_KEY = "limit"

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.hot.paths import Paths
    from looop.loop.beat import Beat


def _path(paths: Paths) -> str:
    return str(paths.state(FILE))


def read(paths: Paths) -> dict[str, Any] | None:
    """The recorded limit, or None (a corrupt record is dropped: a lost wait costs one call)."""
    try:
        rec = store.read_json_object(_path(paths))
    except CorruptState:
        store.remove(_path(paths))
        return None
    if rec is None or not isinstance(rec.get("until"), int | float):
        return None
    return rec


def _scheduled(paths: Paths) -> bool:
    return paths.schedules.joinpath(f"{SCHEDULE}.json").is_file()


def find(b: Beat, text: str) -> Limit | None:
    return find_limit(text, b.ctx.clock.now(), b.ctx.clock.zone())


def record(b: Beat, limit: Limit, runner: str) -> str:
    """Keep the limit and its wake; say it once. Returns the one-line message."""
    # lazy: cron parsing and the notifier; a skip beat, which loads this module, needs neither
    from looop.human import schedules
    from looop.loop import alerts

    ctx, now = b.ctx, b.ctx.clock.now()
    until = ctx.clock.offset_stamp_at(limit.reset)
    note = (
        f"looop: runner {runner} hit its provider usage limit; it resets now, so looop "
        "calls it again. Drop this schedule once read."
    )
    rec = schedules.build(ctx.clock, in_s=max(1, math.ceil(limit.reset - now)), note=note)
    schedules.write(ctx.paths.schedules, SCHEDULE, rec)
    store.write_json(
        _path(ctx.paths),
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
        f"`looop schedule drop {SCHEDULE}` retries sooner"
    )
    ctx.events.emit("warn", "tick.limited", msg, runner=runner, until=int(rec["at"]))
    ctx.events.record("provider_limited", runner=runner, until=int(rec["at"]), said=limit.said)
    alerts.raise_alert(ctx, ALERT_KEY, msg, b.cfg)
    return msg


def waiting(ctx: Ctx) -> dict[str, Any] | None:
    """The limit still in force (before its reset, its schedule not dropped), else None."""
    rec = read(ctx.paths)
    if rec is None or not limit_in_force(rec, ctx.clock.now(), scheduled=True):
        return None
    if not _scheduled(ctx.paths):  # the human dropped the wake: retry on the next change
        rec["lifted"] = True
        store.write_json(_path(ctx.paths), rec)
        return None
    return rec


def prompt_note(ctx: Ctx) -> str | None:
    """For the first decide after the wait: what happened, in a few lines."""
    rec = read(ctx.paths)
    if rec is None:
        return None
    since = ctx.clock.offset_stamp_at(float(rec.get("since") or 0))
    until = ctx.clock.offset_stamp_at(float(rec["until"]))
    how = "until you dropped its schedule" if rec.get("lifted") else f"until its reset at {until}"
    return (
        f"Runner {rec.get('runner', '?')} hit its provider usage limit at {since} "
        f"(it said: {rec.get('said', '?')}). looop made no call {how}; nothing was lost.\n"
        f"If the one-shot schedule `{SCHEDULE}` is still listed as due, drop it "
        "(drop_schedule) when convenient.\n"
    )


def done(ctx: Ctx) -> None:
    """A decide after the wait was carried out: forget the limit, re-arm its alert."""
    if read(ctx.paths) is None:
        return
    from looop.loop import alerts  # lazy: the notifier (see record)

    store.remove(_path(ctx.paths))
    alerts.clear_alerts(ctx, (ALERT_KEY,))
