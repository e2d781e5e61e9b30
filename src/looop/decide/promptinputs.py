"""What a decide prompt is made of, read from the data dir in one step (`gather_inputs`):
the prompt then renders from these values alone (prompt.render_prompt), so what it shows is
pinned by tests that need no data dir, and a beat reads each file once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.decide.order import Record, read_record
from looop.home import store
from looop.home.clock import Clock
from looop.home.errors import CorruptState

JOURNAL_LINES = 20  # the journal's last lines the decider sees, at least
JOURNAL_SPAN = 30  # and at most: the window keeps its first line while it can (promptshown)


@dataclass(frozen=True)
class PromptInputs:
    clock: Clock  # local times in the prompt: NOW, the last failure, the neglected goal
    data_dir: str
    constitution: str
    playbook: str | None = None  # None: no PLAYBOOK.md
    goals: tuple[tuple[str, str], ...] = ()  # (file name, body), by name
    readings: tuple[tuple[str, str], ...] = ()  # (snapshot file name, text), by name
    goal_activity: Mapping[str, Any] = field(default_factory=dict)  # goal id -> last acted
    journal: tuple[str, ...] | None = None  # its last lines; None: no journal to read
    record: Record = field(
        default_factory=Record
    )  # what the last decide's prompt showed (order.py)


def read_lossy(path: Path) -> str | None:
    """Lossy text; None when missing; an unreadable file says so instead of failing the beat."""
    try:
        return store.read_text(path)
    except OSError as e:
        return f"(unreadable: {e.strerror or e})"


def constitution() -> str:
    return resources.files("looop.seed").joinpath("constitution.md").read_text("utf-8")


def gather_inputs(ctx: Ctx) -> PromptInputs:
    """Every file the prompt shows, read once."""
    paths = ctx.paths
    try:
        activity = store.read_json_object(paths.goal_activity) or {}
    except (CorruptState, OSError):
        activity = {}
    try:
        journal: tuple[str, ...] | None = tuple(store.tail_lines(paths.journal, JOURNAL_SPAN))
    except OSError:
        journal = None
    return PromptInputs(
        clock=ctx.clock,
        data_dir=str(paths.data),
        constitution=constitution(),
        playbook=read_lossy(paths.playbook),
        goals=tuple((p.name, read_lossy(p) or "") for p in _goal_files(paths.goals)),
        readings=tuple((p.name, read_lossy(p) or "") for p in _snapshot_files(paths.snapshots)),
        goal_activity=activity,
        journal=journal,
        record=read_record(paths.data),
    )


def _goal_files(goals: Path) -> list[Path]:
    try:
        return sorted(p for p in goals.glob("*.md") if p.is_file())
    except OSError:
        return []


def _snapshot_files(snapshots: Path) -> list[Path]:
    try:
        found = snapshots.glob("*.json")
        return sorted(p for p in found if p.name.startswith(("sensor-", "sys-")) and p.is_file())
    except OSError:
        return []
