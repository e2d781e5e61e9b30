"""Why a goal was archived: every archived goal says it (done, dropped or superseded), who
archived it (the decider or a human's face) and how the worker that served it ended (the
worker of the goal's id, as start_worker names it: its outcome, views/outcomes.py), kept
beside it as goals/archive.why/<name>.json (atomic; out of goals/archive/, which holds the
bodies alone, as it always has) and read back for `looop goal list --archived`, the web's
GET /goals/archived and its goals card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import CorruptState
from looop.views import outcomes

# reason -> what it means; the one list a decision, the CLI and the API accept
REASONS: dict[str, str] = {
    "done": "the goal is met",
    "dropped": "it is no longer wanted",
    "superseded": "another goal took its place",
}
UNSAID = "unsaid"  # none of REASONS: archived before reasons were kept, or a free-form one
WHY_DIR = "archive.why"  # in goals/, beside archive/
MAX_SHOWN = 200  # archived goals listed at most, newest first


def check_reason(reason: object, where: str) -> str:
    """The reason when it is one of REASONS; else ValueError saying which are."""
    if isinstance(reason, str) and (reason in REASONS or reason == UNSAID):
        return reason
    raise ValueError(f"{where} must be one of {', '.join(REASONS)}")


def record(ctx: Ctx, archived: str, goal: str, reason: str, by: str, note: str = "") -> str | None:
    """The reason beside the archived body `archived` (goals/archive/ID.md or ID~N.md), who
    archived it (`by`: "decider", or the human's face: "cli", "web:…") and the outcome its
    worker ended in. Returns that outcome (None: no worker of its id ended)."""
    path = Path(archived)
    ended = worker_outcome(ctx, goal)
    rec = {"v": 1, "goal": goal, "reason": reason, "ts": int(ctx.clock.now()), "by": by}
    rec["worker_outcome"] = ended
    if note:
        rec["note"] = note
    store.write_json(_why(ctx, path), rec)
    ctx.events.record(
        "goal_archived", id=goal, reason=note or reason, file=path.name, by=by, worker_outcome=ended
    )
    return ended


def worker_outcome(ctx: Ctx, goal: str) -> str | None:
    """How the worker serving the goal (the worker of its id) last ended; None: none did."""
    rec = outcomes.read_record(str(ctx.paths.data), goal)
    got = rec.get("outcome") if rec is not None else None
    return got if isinstance(got, str) and got in outcomes.TABLE else None


def _why(ctx: Ctx, archived: Path) -> Path:
    return ctx.paths.goals / WHY_DIR / f"{archived.stem}.json"


def archived(ctx: Ctx) -> list[dict[str, Any]]:
    """Each archived goal, newest first: its file's name, headline and why ("unsaid": one
    archived before reasons were kept, or whose record cannot be read)."""
    base = ctx.paths.goals_archive
    if not base.is_dir():
        return []
    files = [p for p in base.iterdir() if p.suffix == ".md" and p.is_file()]
    rows = []
    for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)[:MAX_SHOWN]:
        try:
            why = store.read_json_object(_why(ctx, p)) or {}
        except CorruptState:
            why = {}
        text = store.read_text(p) or ""
        head = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        reason = why.get("reason") if why.get("reason") in REASONS else UNSAID
        ts, by, ended = why.get("ts"), why.get("by"), why.get("worker_outcome")
        rows.append(
            {
                "id": str(why.get("goal") or p.stem),
                "file": p.name,
                "headline": head[:100],
                "reason": reason,
                "note": str(why["note"]) if why.get("note") else None,
                "archived_unix": ts if isinstance(ts, int) else None,
                "by": by if isinstance(by, str) else None,
                "worker_outcome": ended if ended in outcomes.TABLE else None,
            }
        )
    return rows
