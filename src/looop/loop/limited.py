"""A runner at its provider's usage limit: wait for the reset, never retry blindly.

When a decide fails and the runner's output names a usage window with a reset time
(home/limits), the beat records `.provider-limit.json` and a one-shot schedule
`provider-limit` at the reset, the durable wake the user sees in `looop schedule ls` and may
drop (which lifts the wait: the next changed world calls the runner again). No failure is
counted, so no backoff grows meanwhile; the human is notified once. Beats before the reset
make no AI call; the first decide after it is told what happened, once.

This module is what every beat reads (the wait in force) and what a decide after the wait
clears; recording a new limit (cron schedules, the limit parser) is loop/windowwork.py's,
which only the decide path and the beat's usage-window work import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from looop.home import store, where
from looop.home.delays import limit_in_force
from looop.home.errors import CorruptState
from looop.loop import alerts

SCHEDULE = where.LIMIT_SCHEDULE
FILE = where.PROVIDER_LIMIT
ALERT_KEY = "limit"

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.home.paths import Paths


def limit_path(paths: Paths) -> str:
    """Where the wait is kept (loop/windowwork.py writes it, every beat reads it)."""
    return str(paths.state(FILE))


def read(paths: Paths) -> dict[str, Any] | None:
    """The recorded limit, or None (a corrupt record is dropped: a lost wait costs one call)."""
    try:
        rec = store.read_json_object(limit_path(paths))
    except CorruptState:
        store.remove(limit_path(paths))
        return None
    if rec is None or not isinstance(rec.get("until"), int | float):
        return None
    return rec


def waiting(ctx: Ctx) -> dict[str, Any] | None:
    """The limit still in force (before its reset, its schedule not dropped), else None."""
    rec = read(ctx.paths)
    if rec is None or not limit_in_force(rec, ctx.clock.now(), scheduled=True):
        return None
    if not ctx.paths.schedules.joinpath(
        f"{SCHEDULE}.json"
    ).is_file():  # the human dropped the wake: retry on the next change
        rec["lifted"] = True
        store.write_json(limit_path(ctx.paths), rec)
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
    store.remove(limit_path(ctx.paths))
    alerts.clear_alerts(ctx, (ALERT_KEY,))
