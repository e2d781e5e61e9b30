"""The disk bound: each beat measures every live worker's writable folders (workers/writable)
and pauses, whole, a worker that keeps more than worker_max_disk bytes there, named with the
folder and the bound (an event, its over mark, `ls` says "over disk limit"). A full data-dir
disk is laid at the door of the worker that keeps the most (`fullest`).

Measuring never follows a symlink (a box's link to / counts as a link), counts the blocks a
file holds (a sparse file cannot hide its bytes, nor fake them), and stops once past the
bound or past MAX_ENTRIES entries a worker, so a box of a million empty files costs a beat a
bounded walk: such a worker is said once, as not fully measured."""

from __future__ import annotations

import os

from looop.core.context import Ctx
from looop.hot import store
from looop.hot.config import Knobs
from looop.hot.spent import BUDGETS, over_budget
from looop.hot.workerrows import PULSE
from looop.sessions import hold
from looop.sessions.state import list_sessions
from looop.workers.writable import named_for, writable

MAX_ENTRIES = 200_000  # a worker's entries walked in one beat


class Use:
    """What a worker keeps in its writable folders, as far as the walk went."""

    def __init__(self) -> None:
        self.total = 0
        self.folders: dict[str, int] = {}
        self.left = MAX_ENTRIES  # entries the walk may still visit

    @property
    def cut(self) -> bool:
        return self.left <= 0

    def biggest(self) -> tuple[str, int]:
        return max(self.folders.items(), key=lambda kv: kv[1], default=("", 0))


def _walk(top: str, mine: str, wid: str, use: Use, limit: int) -> int:
    """Bytes under `top` (blocks held), no symlink followed, until past `limit` or the
    entries run out; `mine`: only the top's entries named for the worker count."""
    total, stack, first = 0, [top], True
    while stack and use.left > 0 and use.total + total <= limit:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            first = False
            continue
        with it:
            for entry in it:
                if first and mine and not named_for(entry.name, wid):
                    continue
                use.left -= 1
                try:
                    st = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if use.left <= 0 or use.total + total > limit:
                    break
        first = False
    return total


def measure(ctx: Ctx, wid: str, limit: int) -> Use:
    """Worker `wid`'s bytes in its writable folders, the walk ending once past `limit`."""
    use = Use()
    for folder in writable(ctx.paths, wid):
        if use.total > limit or use.cut:
            break
        n = _walk(folder.path, folder.mine, wid, use, limit)
        if n:
            use.folders[_shown(ctx, folder.path, folder.mine, wid)] = n
            use.total += n
    return use


def _shown(ctx: Ctx, path: str, mine: str, wid: str) -> str:
    """A folder as the line names it: relative to the data dir where it is inside."""
    rel = os.path.relpath(path, ctx.paths.data)
    name = path if rel.startswith("..") else rel
    return os.path.join(name, wid + "*") if mine else name


def _live_workers(ctx: Ctx) -> list[str]:
    return [s.id for s in list_sessions(ctx.paths.data) if s.alive and s.id != PULSE]


def check(ctx: Ctx, knobs: Knobs) -> list[str]:
    """Pause every live worker over the disk bound, once (until `worker continue`); the ones
    paused this beat."""
    limit = knobs.num("worker_max_disk")
    if limit <= 0:
        return []
    data = str(ctx.paths.data)
    over = over_budget(data)
    done = []
    for wid in _live_workers(ctx):
        if wid in over:
            continue
        use = measure(ctx, wid, limit)
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


def fullest(ctx: Ctx, limit: int = 1 << 50) -> str:
    """A full disk's line: the live worker keeping the most in its writable folders, or ""."""
    best: tuple[int, str, str] = (0, "", "")
    try:
        wids = _live_workers(ctx)
    except OSError:
        return ""
    for wid in wids:
        use = measure(ctx, wid, limit)
        if use.total > best[0]:
            best = (use.total, wid, use.biggest()[0])
    total, wid, folder = best
    if not wid:
        return ""
    return f"worker {wid} keeps the most: {_size(total)} in its folders (most in {folder})"


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
