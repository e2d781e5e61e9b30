"""Telling the human when the loop itself is in trouble: a breaker opened, beats keep failing.

An open breaker is seen again every beat, so each alert is latched in .alerts.json and sent
once per opening; the latch is released when the beat gets past the breakers again. Delivery
is human/notify's: in the background, bounded, never blocking the beat.
"""

from __future__ import annotations

import contextlib

from looop.core.context import Ctx
from looop.home import store
from looop.home.config import Config
from looop.home.errors import CorruptState
from looop.human.notify import notify

BREAKERS = ("budget", "unmetered", "capped")


def _latched(ctx: Ctx) -> dict[str, object]:
    try:
        return dict(store.read_json_object(ctx.paths.alerts) or {})
    except CorruptState:
        return {}  # a lost latch costs at most one repeated message


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
