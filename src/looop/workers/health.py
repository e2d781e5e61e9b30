"""Worker health for the decider: busy | waiting-ask | needs-input | limited until HH:MM |
stuck | dead.

The rows themselves are built in views/workerrows.py (light, for `looop ls`); these are the
Session- and Ctx-shaped doors the pulse, its probes and the TUI use."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.sessions.state import Session
from looop.views import workerrows as fleet
from looop.views.workerrows import age as age
from looop.workers.needsinput import Looker


def session_fields(s: Session) -> dict[str, Any]:
    """A Session as home/sessionfiles.load_light reads one (what fleet.worker_rows takes)."""
    return {
        "id": s.id,
        "state": s.state,
        "alive": s.alive,
        "exit_code": s.exit_code,
        "label": s.label,
        "note": s.note,
        "started_at": s.started_at,
        "last_change": s.last_change,
        "dir": str(s.dir),
        "contain": s.contain,
        "prompt": s.prompt,
    }


def fleet_view(
    ctx: Ctx,
    sessions: list[Session],
    stuck_secs: int,
    trees: dict[str, dict[str, Any]] | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """One row per worker (pulse excluded), sorted by id: what sys-sessions and `worker list` show
    (`trees`: fleet.tree_records, when the caller already read them; `custom`: the runners'
    needs-input patterns, workers/needsinput).

    Times are absolute stamps, never ages, so an unchanged fleet renders byte-identically."""
    rows = [session_fields(s) for s in sessions]
    data = str(ctx.paths.data)
    return fleet.worker_rows(data, rows, ctx.clock, stuck_secs, trees, custom, Looker())
