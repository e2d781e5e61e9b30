"""What one beat carries from gate to gate, and what it hands the pulse; runs/<id>/ (the replay
archive of every decide): naming, pruning, and read views."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from looop.core.context import Ctx
from looop.core.readings import Snapshot
from looop.home import store, where
from looop.home.config import Config, Knobs, Runner
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.sessionfiles import remove_tree
from looop.loop.flap import FlapResult
from looop.loop.guards import read_record
from looop.loop.world import World, WorldMemo
from looop.views.beatlog import move_line

if TYPE_CHECKING:  # a skip beat never loads the executor
    from looop.act.outcome import Executed
    from looop.sessions.state import Session
    from looop.views.shapes import RunDetail, RunRow

SHELL_FOLLOW_UP_SECS = 5


@dataclass
class TickOutcome:
    """What one beat produced, for the pulse's cadence choice."""

    acted: bool = False
    decided: bool = False  # a runner was called (success or failure)
    next_interval_s: int | None = None
    follow_up_s: int | None = None
    coalesce_s: int | None = None  # a change waits: beat again (unforced) after this long
    status: str = "idle"  # skip | coalesce | backoff | error | decided | failed | dry-run
    run_id: str | None = None
    executed: Executed | None = None
    error: str | None = None
    prompt_path: Path | None = None
    prompt_text: str | None = None
    flapping: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    world: World | None = None  # as sensed this beat, once known
    knobs: Knobs | None = None  # what the beat ran on: the pulse's cadence reads these


@dataclass
class Beat:
    """One beat's state as the gates pass it along. The config and knobs are resolved once,
    after seeding: an edit mid-beat takes effect on the next beat, never half of this one."""

    ctx: Ctx
    out: TickOutcome
    force: bool
    dry_run: bool
    override_backoff: bool
    memo: WorldMemo | None = None  # the pulse's: a world read unchanged is not hashed again
    slept: float | None = None  # the pulse's sleep before this beat; None: not a pulse's beat
    seed: bool = True  # False under a pulse: a data dir found new is an error, never re-seeded
    cfg: Config | None = None
    cfg_error: str | None = None
    knobs: Knobs | None = None
    runner: Runner | None = None
    flap_notes: list[str] = field(default_factory=list)  # shown in this prompt: gone on commit
    flap: FlapResult | None = None  # this beat's flap step (none on a dry run)
    last_world: dict[str, str] | None = None  # the world the decider last saw, once read
    last_world_read: bool = False
    why_forced: str | None = None  # a forced beat's cause, for its caller and its WHAT CHANGED
    forced_unchanged: str | None = None  # set when that beat re-decides an unchanged world
    snapshot: Snapshot | None = None  # every reading as sensed this beat, with its world hash
    fleet: list[Session] | None = None  # the sessions as housekeeping listed them: the probe's

    @property
    def k(self) -> Knobs:
        assert self.knobs is not None, "knobs are resolved before the first gate"
        return self.knobs

    @property
    def world(self) -> World:
        assert self.out.world is not None, "the world is read before the gates that use it"
        return self.out.world

    def stop(self, status: str, error: str | None = None) -> TickOutcome:
        """End the beat here with this status (and error)."""
        self.out.status = status
        if error is not None:
            self.out.error = error
        return self.out


def resolve_config(ctx: Ctx) -> tuple[Config | None, str | None, Knobs]:
    """(config, its error, knobs) read once. A broken config leaves the built-in knobs (env
    still applies) so the beat can sense and gate; the runner gate reports the error."""
    try:
        cfg = ctx.config()
    except LooopError as e:
        return None, str(e), ctx.default_knobs()
    return cfg, None, ctx.knobs(cfg)


# `tick --dry-run`: a beat that senses for real but writes nothing into the data dir.


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


def _result(ctx: Ctx, run_id: str) -> RunRow:
    res = read_record(ctx.paths.run_dir(run_id) / "result.json")
    if res is None:
        return {"run_id": run_id, "status": "running?"}

    summary = (
        move_line(str(res.get("action")), str(res.get("journal") or ""))
        if res.get("action")
        else res.get("error") or ""
    )
    # result.json is written by deciding.write_result in RunRow's shape; shown as stored
    return cast("RunRow", {**res, "summary": summary})


def run_dirs(ctx: Ctx) -> list[Path]:
    """Every run's folder, newest first."""
    try:
        dirs = [p for p in ctx.paths.runs.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(dirs, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def run_dir(ctx: Ctx, run_id: str) -> Path:
    """A recorded run's folder; LooopError when there is no such run."""
    d = ctx.paths.run_dir(run_id)
    if "/" in run_id or run_id.startswith(".") or not d.is_dir():
        raise LooopError(f"no run '{run_id}' — `looop runs` lists the recent ones")
    return d


def list_runs(ctx: Ctx, limit: int) -> list[RunRow]:
    return [_result(ctx, d.name) for d in run_dirs(ctx)[:limit]]


def show_run(ctx: Ctx, run_id: str) -> RunDetail:
    d = run_dir(ctx, run_id)
    return {
        **_result(ctx, run_id),
        "prompt": str(d / "prompt.md"),
        "output": str(d / "output.log"),
        "output_text": store.read_text(d / "output.log") or "",
    }


def new_run_id(ctx: Ctx) -> str:
    """tick-YYYYmmdd-HHMMSS, with a -N suffix when two beats share a second."""
    base = "tick-" + ctx.clock.local().strftime("%Y%m%d-%H%M%S")
    run_id, n = base, 1
    while ctx.paths.run_dir(run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def prune_runs(ctx: Ctx, keep: int) -> None:
    if keep <= 0:
        return
    for old in run_dirs(ctx)[keep:]:
        remove_tree(os.fspath(old))
