"""What a worker's screen waits on, judged on its SSH host (the satellite's `ls`): the same
look the beat takes at home (home/needsinput.refine with workers/needsinput's Looker) over the
host's own supervisors, so the home learns a far worker is at its approval prompt or idle at
its input box without reading its screen over SSH. As cheap as at home: a screen is read only
when its log changed since the last look (the verdicts kept in the satellite's data dir)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from looop.home.clock import Clock
from looop.sessions.state import Session
from looop.views.needsinput import HEALTH, refine
from looop.workers.needsinput import Looker


def screen_waits(root: Path, listed: Sequence[Session], clock: Clock) -> dict[str, str]:
    """Live worker id -> what its screen waits on (`approval: …`, `idle: …`), for the ones
    whose screen waits on a human; the CLIs' own patterns (a runner's configured ones live in
    the home's config, which a host has not)."""
    rows = [{"id": s.id, "alive": True, "health": "busy"} for s in listed if s.alive]
    if not rows:
        return {}
    dirs = {s.id: {"dir": str(s.dir)} for s in listed}
    refine(str(root), rows, dirs, clock, None, Looker())
    return {str(r["id"]): str(r["needs_input"]) for r in rows if r["health"] == HEALTH}
