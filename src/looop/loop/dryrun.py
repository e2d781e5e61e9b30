"""`tick --dry-run`: a beat that senses for real but writes nothing into the data dir."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path

from looop.core.context import Ctx
from looop.home import where
from looop.home.paths import Paths


class DryRunPaths(Paths):
    """The data dir as it is, except that snapshots go to a scratch dir: `tick --dry-run`
    senses for real but writes nothing into the data dir."""

    __slots__ = ("scratch",)
    scratch: Path

    def __init__(self, base: Paths, scratch: Path) -> None:
        super().__init__(base.data, base.config)
        object.__setattr__(self, "scratch", scratch)

    @property
    def snapshots(self) -> Path:
        return self.scratch

    @property
    def schedule_marks(self) -> Path:
        return self.scratch / where.SCHEDULE_MARKS


def dry_run_ctx(ctx: Ctx, scratch: Path) -> Ctx:
    """A Ctx for a dry run: snapshots in `scratch` (seeded with the current ones so cached
    sensors keep their reading), no events.jsonl lines."""
    with contextlib.suppress(OSError):
        for snap in ctx.paths.snapshots.glob("*.json"):
            shutil.copy2(snap, scratch / snap.name)
    with contextlib.suppress(OSError):
        shutil.copy2(ctx.paths.schedule_marks, scratch / where.SCHEDULE_MARKS)
    events = replace(ctx.events, events_path=None)
    return replace(ctx, paths=DryRunPaths(ctx.paths, scratch), events=events)
