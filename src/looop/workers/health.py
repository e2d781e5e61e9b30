"""Worker health for the decider: busy | waiting-ask | stuck | dead."""

from __future__ import annotations

import os
from typing import Any

from looop.core import store
from looop.core.clock import offset_stamp
from looop.core.context import Ctx
from looop.core.errors import CorruptState
from looop.human.mailbox import pending
from looop.sessions import Session

PULSE = "pulse"


def pending_ask_workers(ctx: Ctx) -> set[str]:
    """Workers blocked on a human: the askers of every unanswered ask."""
    return {
        str(r["worker"])
        for r in pending(ctx.paths.asks, ctx.paths.answers)
        if isinstance(r.get("worker"), str)
    }


def last_output(s: Session) -> float | None:
    try:
        return os.stat(s.dir / "output.log").st_mtime
    except OSError:
        return None


def health_of(s: Session, waiting: set[str], now: float, stuck_secs: int) -> str:
    if not s.alive:
        return "dead"
    if s.id in waiting:
        return "waiting-ask"
    last = last_output(s)
    if stuck_secs > 0 and last is not None and now - last >= stuck_secs:
        return "stuck"
    return "busy"  # unknown idle counts as busy


def verify_result(ctx: Ctx, wid: str) -> dict[str, Any] | None:
    try:
        return store.read_json_object(ctx.paths.verify / f"{wid}.json")
    except CorruptState:
        return {"pass": False, "output": "verify record unreadable"}


def fleet_view(ctx: Ctx, sessions: list[Session], stuck_secs: int) -> list[dict[str, Any]]:
    """One row per worker (pulse excluded), sorted by id: what sys-sessions and `worker list` show.

    Times are absolute stamps, never ages, so an unchanged fleet renders byte-identically."""
    waiting = pending_ask_workers(ctx)
    now = ctx.clock.now()
    rows = []
    for s in sorted((s for s in sessions if s.id != PULSE), key=lambda s: s.id):
        last = last_output(s)
        v = verify_result(ctx, s.id)
        rows.append(
            {
                "id": s.id,
                "state": s.state,
                "alive": s.alive,
                "exit_code": s.exit_code,
                "health": health_of(s, waiting, now, stuck_secs),
                "note": s.note if s.alive else None,
                "verify": ("pass" if v.get("pass") else "fail") if v else None,
                "verify_output": (v or {}).get("output"),
                "started_at": s.started_at,
                "last_output_at": offset_stamp(ctx.clock.local(last)) if last else None,
                "last_output_unix": last,
                "label": s.label,
            }
        )
    return rows


def age(seconds: float | None) -> str:
    """Compact idle/uptime for tables: 45s, 12m, 3h, 2d (— when unknown)."""
    if seconds is None:
        return "—"
    s = int(max(0.0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
