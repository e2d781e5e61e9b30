"""The status line of `looop watch`, its left part: the pulse and its next beat, an open
breaker, the pending asks and how many things wait on the human (the needs-you queue,
home/needs: `looop needs` lists them), today's spend, a broken config, what a key is doing,
the data dir."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.human.mailbox import pending
from looop.views.needs import needs_at
from looop.views.status import gather_status
from looop.views.workerrows import age

if TYPE_CHECKING:
    from looop.views.shapes import StatusView


def status_left(ctx: Ctx, acting: str | None, workers: list[dict[str, Any]] | None = None) -> str:
    """Pulse, next beat, spend and asks first: at 80 columns the data dir is what gives.
    `workers`: the fleet rows the watch last read (here and away), for the needs-you count."""
    paths = ctx.paths
    parts: list[str] = []
    st: StatusView | None
    try:
        st = gather_status(paths, ctx.env, ctx.clock, all_workers=False)
    except (LooopError, OSError) as e:
        st = None
        parts.append(f"status ✗ {e}")
    try:
        asks = len(pending(paths.asks, paths.answers))
    except (LooopError, OSError):
        asks = 0
    ask_part = f"{asks} ask{'s' if asks != 1 else ''}"
    try:
        waiting = len(needs_at(str(paths.data), workers or []))
    except (LooopError, OSError):
        waiting = asks
    if waiting > asks:  # more than the asks wait on the human: `looop needs` says what
        ask_part += f" · {waiting} need you (looop needs)"
    if st is not None:
        parts.append(pulse_part(st, ctx.clock.now(), st["paused"]))
        sp = st["spend"]
        spend = sp if sp and "error" not in sp else None
        if spend is not None:  # an open breaker stops every AI call: said next to the pulse
            shut = [k for k in ("budget", "unmetered", "decides") if spend[k]["open"]]
            if shut:
                parts.append(f"breaker ✗ {'/'.join(shut)} (looop status)")
        parts.append(ask_part)
        if spend is not None:
            cap = spend["max_daily_usd"]
            spent = f"${spend['spent_today_usd']:.2f}"
            parts.append(f"{spent}/${cap:.2f} today" if cap else f"{spent} today")
        if st["config_error"]:
            parts.append("config ✗ (looop status)")
    else:
        parts.append(ask_part)
    if acting:
        parts.append(f"{acting}…")
    parts.append(str(paths.data))
    return " · ".join(parts)


def pulse_part(st: StatusView, now: float, paused: bool = False) -> str:
    """`pulse up · next beat in 42s` (v1.0's countdown), `pulse up · beating` while a beat
    runs, `pulse paused` (a Pause, workers kept), `pulse down`."""
    if not st["pulse"]["running"]:
        return "pulse paused" if paused else "pulse down"
    beat = st["last_beat"]
    if beat is not None and beat["outcome"] in ("running", "deciding"):
        return f"pulse up · {'deciding' if beat['outcome'] == 'deciding' else 'beating'}"
    nb = st["next_beat"]
    if nb is None or nb["ts"] is None:
        return "pulse up"
    left = int(nb["ts"] - now)
    return f"pulse up · next beat in {age(left)}" if left > 0 else "pulse up · beat due"
