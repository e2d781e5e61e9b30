"""`tick --dry-run`: a beat that senses for real but writes nothing into the data dir."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import where
from looop.home.paths import Paths


class MovedPaths(Paths):
    """The data dir as it is, except the locations named in `moved` (a dry run's snapshots
    in a scratch dir, a replayed decide's answer in its own run's folder)."""

    __slots__ = ("moved",)
    moved: dict[str, Path]

    def __init__(self, base: Paths, **moved: Path) -> None:
        super().__init__(base.data, base.config)
        object.__setattr__(self, "moved", moved)

    def __getattribute__(self, name: str) -> Any:
        if name != "moved" and name in (got := object.__getattribute__(self, "moved")):
            return got[name]
        return object.__getattribute__(self, name)


def dry_run_ctx(ctx: Ctx, scratch: Path) -> Ctx:
    """A Ctx for a dry run: snapshots in `scratch` (seeded with the current ones so cached
    sensors keep their reading), no events.jsonl lines."""
    with contextlib.suppress(OSError):
        for snap in ctx.paths.snapshots.glob("*.json"):
            shutil.copy2(snap, scratch / snap.name)
    with contextlib.suppress(OSError):
        shutil.copy2(ctx.paths.schedule_marks, scratch / where.SCHEDULE_MARKS)
    events = replace(ctx.events, events_path=None)
    moved = MovedPaths(ctx.paths, snapshots=scratch, schedule_marks=scratch / where.SCHEDULE_MARKS)
    return replace(ctx, paths=moved, events=events)
