"""`looop wait` (no id): block until the world needs a human; exit 2 when no pulse runs."""

from __future__ import annotations

import select
from typing import Any

from looop.core.context import Ctx
from looop.home import locks
from looop.human.mailbox import pending
from looop.loop.world import read_world

CATEGORIES = ("asks", "journal", "playbook", "goals", "snapshots")


def fingerprint(ctx: Ctx) -> dict[str, Any]:
    items = read_world(ctx.paths).items
    try:
        st = ctx.paths.journal.stat()
        journal: Any = (st.st_size, st.st_mtime_ns)
    except OSError:
        journal = None
    return {
        "asks": sorted(str(r.get("id")) for r in pending(ctx.paths.asks, ctx.paths.answers)),
        "journal": journal,
        "playbook": items.get("playbook"),
        "goals": {k: v for k, v in items.items() if k.startswith("goal:")},
        "snapshots": {k: v for k, v in items.items() if k.startswith("snap:")},
    }


def wait_for_human(
    ctx: Ctx, only_asks: bool, actionable: bool, timeout_s: float | None, poll_s: float
) -> tuple[int, list[str], list[dict[str, Any]]]:
    """(exit code, changed categories, pending asks): 0 changed, 2 pulse down, 124 timeout."""
    watch = ("asks",) if only_asks else ("asks", "journal") if actionable else CATEGORIES
    deadline = None if timeout_s is None else ctx.clock.monotonic() + timeout_s
    base = fingerprint(ctx)
    while True:
        asks = pending(ctx.paths.asks, ctx.paths.answers)
        if not locks.flock_held(ctx.paths.lock_file):
            return 2, ["pulse-down"], asks
        if asks:
            return 0, ["asks"], asks
        now = fingerprint(ctx)
        changed = [c for c in watch if now[c] != base[c]]
        if changed:
            return 0, changed, asks
        if deadline is not None and ctx.clock.monotonic() >= deadline:
            return 124, [], asks
        select.select([], [], [], poll_s)  # files written by other processes: poll, bounded
