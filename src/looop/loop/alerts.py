"""Telling the human when the loop itself is in trouble: a breaker opened, beats keep failing.

An open breaker is seen again every beat, so each alert is latched in .alerts.json and sent
once per opening; the latch is released when the beat gets past the breakers again. Delivery
is human/notify's: in the background, bounded, never blocking the beat.
"""

from __future__ import annotations

import contextlib
from typing import Any

from looop.core.context import Ctx
from looop.home import store, where
from looop.home.config import Config
from looop.home.delays import limit_in_force
from looop.home.errors import CorruptState
from looop.home.paths import Paths
from looop.human.notify import notify
from looop.loop.guards import read_record

BREAKERS = ("budget", "unmetered", "capped")
LIMIT_ALERT = "limit"


def _latched(ctx: Ctx) -> dict[str, object]:
    return dict(read_record(ctx.paths.alerts) or {})  # a lost latch: one repeated message


def raise_alert(ctx: Ctx, key: str, message: str, cfg: Config | None = None) -> bool:
    """Notify once per opening of `key`; True when a notification went out. `cfg`: the
    beat's config, for the notification hook and URLs (None reads the file)."""
    latched = _latched(ctx)
    if key in latched:
        return False
    latched[key] = int(ctx.clock.now())
    with contextlib.suppress(OSError):  # cannot latch: still tell the human rather than stay silent
        store.write_json(ctx.paths.alerts, latched)
    notify(ctx, message, key, "alert", cfg)
    ctx.events.record("alerted", key=key, message=message)
    return True


def clear_alerts(ctx: Ctx, keys: tuple[str, ...] = BREAKERS) -> None:
    """The condition is over: the next opening alerts again."""
    latched = _latched(ctx)
    if not any(k in latched for k in keys):
        return
    for k in keys:
        latched.pop(k, None)
    with contextlib.suppress(OSError):
        if latched:
            store.write_json(ctx.paths.alerts, latched)
        else:
            store.remove(ctx.paths.alerts)


def failure_streak(
    ctx: Ctx, fails: int, streak: int, error: str, replay: str, cfg: Config | None = None
) -> None:
    """Exactly at the streak length: once per streak, since only a success resets the count."""
    if streak > 0 and fails == streak:
        notify(
            ctx,
            f"{fails} beats in a row failed; the last: {error} (replay: {replay}). "
            "The pulse keeps retrying with backoff; `looop status` shows the state.",
            "failures",
            "alert",
            cfg,
        )
        ctx.events.record("alerted", key="failures", fails=fails)


def recovered(ctx: Ctx, fails_before: int, streak: int, cfg: Config | None = None) -> None:
    """A success after a streak the human was told about."""
    if streak > 0 and fails_before >= streak:
        msg = f"recovered: a beat succeeded after {fails_before} failures"
        notify(ctx, msg, "failures", "ok", cfg)
        ctx.events.record("alerted", key="recovered", fails=fails_before)


# A runner at its provider's usage limit: wait for the reset, never retry blindly.
#
# When a decide fails and the runner's output names a usage window with a reset time
# (home/limits), the beat records `.provider-limit.json` and a one-shot schedule
# `provider-limit` at the reset, the durable wake the user sees in `looop schedule ls` and may
# drop (which lifts the wait: the next changed world calls the runner again). No failure is
# counted, so no backoff grows meanwhile; the human is notified once. Beats before the reset
# make no AI call; the first decide after it is told what happened, once.
#
# This module is what every beat reads (the wait in force) and what a decide after the wait
# clears; recording a new limit (cron schedules, the limit parser) is loop/windowwork.py's,
# which only the decide path and the beat's usage-window work import.


def limit_path(paths: Paths) -> str:
    """Where the wait is kept (loop/windowwork.py writes it, every beat reads it)."""
    return str(paths.state(where.PROVIDER_LIMIT))


def read_limit(paths: Paths) -> dict[str, Any] | None:
    """The recorded limit, or None (a corrupt record is dropped: a lost wait costs one call)."""
    try:
        rec = store.read_json_object(limit_path(paths))
    except CorruptState:
        store.remove(limit_path(paths))
        return None
    if rec is None or not isinstance(rec.get("until"), int | float):
        return None
    return rec


def limit_waiting(ctx: Ctx) -> dict[str, Any] | None:
    """The limit still in force (before its reset, its schedule not dropped), else None."""
    rec = read_limit(ctx.paths)
    if rec is None or not limit_in_force(rec, ctx.clock.now(), scheduled=True):
        return None
    if not (ctx.paths.schedules / f"{where.LIMIT_SCHEDULE}.json").is_file():  # the wake dropped
        rec["lifted"] = True
        store.write_json(limit_path(ctx.paths), rec)
        return None
    return rec


def limit_note(ctx: Ctx) -> str | None:
    """For the first decide after the wait: what happened, in a few lines."""
    rec = read_limit(ctx.paths)
    if rec is None:
        return None
    since = ctx.clock.offset_stamp_at(float(rec.get("since") or 0))
    until = ctx.clock.offset_stamp_at(float(rec["until"]))
    how = "until you dropped its schedule" if rec.get("lifted") else f"until its reset at {until}"
    return (
        f"Runner {rec.get('runner', '?')} hit its provider usage limit at {since} "
        f"(it said: {rec.get('said', '?')}). looop made no call {how}; nothing was lost.\n"
        f"If the one-shot schedule `{where.LIMIT_SCHEDULE}` is still listed as due, drop it "
        "(drop_schedule) when convenient.\n"
    )


def limit_done(ctx: Ctx) -> None:
    """A decide after the wait was carried out: forget the limit, re-arm its alert."""
    if read_limit(ctx.paths) is None:
        return
    store.remove(limit_path(ctx.paths))
    clear_alerts(ctx, (LIMIT_ALERT,))
