"""runs/<id>/ (the replay archive of every decide): naming, pruning, and read views."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, cast

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.loop.guards import read_record
from looop.views.beatlog import move_line

if TYPE_CHECKING:
    from looop.views.shapes import RunDetail, RunRow


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
        shutil.rmtree(old, ignore_errors=True)
