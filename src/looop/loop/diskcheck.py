"""The disk bound: each beat measures every live worker's writable folders (workers/diskuse)
and pauses, whole, a worker that keeps more than worker_max_disk bytes there, named with the
folder and the bound (an event, its over mark, `ls` says "over disk limit"). A full data-dir
disk is laid at the door of the worker that keeps the most (`fullest`).

How a worker's use is measured (bounded, never following a link): workers/diskuse.py."""

from __future__ import annotations

import os

from looop.core.context import Ctx
from looop.home import store
from looop.home.config import Knobs
from looop.home.paths import Paths
from looop.home.sessionfiles import live_ids
from looop.sessions import hold
from looop.spend.spent import BUDGETS, over_budget
from looop.views.workerrows import PULSE
from looop.workers.diskuse import MAX_ENTRIES, measure
from looop.workers.diskuse import size as _size


def check(ctx: Ctx, knobs: Knobs, live: list[str]) -> list[str]:
    """Pause every worker of `live` (the beat's live ones) over the disk bound, once (until
    `worker continue`); the ones paused this beat. Workers away are held by their hosts
    (loop/fleetwork.meter)."""
    limit = knobs.num("worker_max_disk")
    if limit <= 0:
        return []
    data = str(ctx.paths.data)
    over = over_budget(data)
    done = []
    for wid in live:
        if wid in over:
            continue
        use = measure(ctx.paths, wid, limit)
        if use.cut and use.total <= limit:
            _say_cut(ctx, wid)
        if use.total <= limit or not hold.pause(ctx.paths.data, wid):
            continue
        folder, n = use.biggest()
        mark = {"limit": "disk", "folder": folder, "bytes": use.total, "max": limit}
        store.write_json(os.path.join(data, BUDGETS, f"{wid}.over"), {**mark, "policy": "pause"})
        msg = (
            f"worker {wid} keeps more than its disk limit {_size(limit)} ({_size(n)} in "
            f"{folder}): paused whole — free it, then `looop worker continue {wid}`"
        )
        ctx.events.emit("warn", "worker.over_disk", msg, id=wid)
        ctx.events.record("worker_over_disk", id=wid, folder=folder, bytes=use.total, max=limit)
        done.append(wid)
    return done


def _say_cut(ctx: Ctx, wid: str) -> None:
    """Said once a worker (a mark in its sandbox folder): too many entries to measure."""
    mark = os.path.join(str(ctx.paths.sandbox), f".{wid}.unmeasured")
    if os.path.exists(mark):
        return
    try:
        store.atomic_write(mark, "")
    except OSError:
        return
    ctx.events.emit(
        "warn",
        "worker.over_disk",
        f"worker {wid} keeps more than {MAX_ENTRIES} entries in its folders: its disk use is "
        "not fully measured",
        id=wid,
    )


def fullest(paths: Paths, limit: int = 1 << 50) -> str:
    """A full disk's line: the live worker keeping the most in its writable folders, or ""."""
    best: tuple[int, str, str] = (0, "", "")
    try:
        wids = live_ids(str(paths.data), but=PULSE)
    except OSError:
        return ""
    for wid in wids:
        use = measure(paths, wid, limit)
        if use.total > best[0]:
            best = (use.total, wid, use.biggest()[0])
    total, wid, folder = best
    if not wid:
        return ""
    return f"worker {wid} keeps the most: {_size(total)} in its folders (most in {folder})"
