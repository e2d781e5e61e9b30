"""A worker's bounds as its SSH host keeps them (the satellite's `bounds`, `pause`, `go_on`).

Processes and memory are held by the host's kernel from the start (the supervisor's cgroup, or
RLIMIT_NPROC for a user who is not root: core/limits); what the satellite adds is the disk
bound (measured here, as the beat measures at home: workers/diskuse) and the word on each:
which live worker is at its process bound, which ended at its memory bound, which it paused
for its disk. A worker is paused and let go on whole, on its host (sessions/hold)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from looop.core import limits, procstat
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import CorruptState
from looop.remote import untrusted
from looop.sessions import hold
from looop.sessions.state import META, Session, list_sessions
from looop.workers.diskuse import Writable, measure

OVER = "budgets"  # a worker paused for its disk: `<id>.over` here, as at home


def over_file(root: Path, sid: str) -> Path:
    return root / OVER / f"{sid}.over"


def limit_of(root: Path, s: Session) -> str | None:
    """The bound a session is at: `memory` (ended by the kernel at it: its supervisor's
    status says so), `pids` (live, its next fork refused), `disk` (paused for it here)."""
    if not s.alive:
        try:
            said = store.read_json(os.path.join(s.dir, "status.json"))
        except (CorruptState, OSError):
            return None
        return "memory" if isinstance(said, dict) and said.get("limit") == "memory" else None
    if _held(root, s):
        return "disk"
    if s.child_pid and (limits.pids_full(s.child_pid) or holds_its_room(s)):
        return "pids"
    return None


def _held(root: Path, s: Session) -> bool:
    """Whether this run of `s` was paused for its disk: a mark another run of its id left (one
    killed while paused) is dropped, so this one is measured and paused in its turn."""
    try:
        mark = store.read_json(over_file(root, s.id))
    except (CorruptState, OSError):
        return False
    if mark is None or (isinstance(mark, dict) and mark.get("run") == s.started_at):
        return mark is not None
    store.remove(over_file(root, s.id))
    return False


def holds_its_room(s: Session) -> bool:
    """Whether the run holds every task RLIMIT_NPROC gave it (`nproc` in its meta): the
    kernel's own word (core/limits.nproc_full) compares its user's tasks now with what ran at
    the spawn, so a process that ran then and ended since (the very call that started the
    worker) would hide a flood that filled its bound. Its tasks: what its supervisor runs
    and adopted (threads count), the supervisor not (it was counted at the spawn)."""
    try:
        meta = store.read_json(os.path.join(s.dir, META))
    except (CorruptState, OSError):
        return False
    room = untrusted.count(meta.get("nproc") if isinstance(meta, dict) else None, 1 << 22)
    if not room or not s.supervisor_pid:
        return False
    return sum(_tasks(p) for p in procstat.tree(s.supervisor_pid)[1:]) >= room


def _tasks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 1


def check(ctx: Ctx, req: dict[str, Any]) -> dict[str, Any]:
    """Each live worker over the disk bound the home sent, paused whole (once, until the
    home's `go_on`); every worker at a bound now, with what it keeps where for the disk."""
    root = ctx.paths.data
    disk = untrusted.count(req.get("disk", 0), 1 << 40) or 0
    out = []
    for s in list_sessions(root):
        row: dict[str, Any] = {"id": s.id}
        if s.alive and disk > 0 and not _held(root, s):
            use = measure(ctx.paths, s.id, disk, (Writable(str(root / "work" / s.id), ""),))
            if use.total > disk and hold.pause(root, s.id):
                mark = {"limit": "disk", "folder": use.biggest()[0], "bytes": use.total}
                # this run's: its id may run again
                store.write_json(over_file(root, s.id), {**mark, "max": disk, "run": s.started_at})
        limit = limit_of(root, s)
        if limit is None:
            continue
        row["limit"] = limit
        if limit == "disk":
            try:
                said = store.read_json(over_file(root, s.id))
            except (CorruptState, OSError):
                said = None
            if isinstance(said, dict):
                row.update({k: said.get(k) for k in ("folder", "bytes", "max")})
        out.append(row)
    return {"workers": out}


def pause(root: Path, sid: str) -> dict[str, Any]:
    return {"paused": hold.pause(root, sid)}


def go_on(root: Path, sid: str) -> dict[str, Any]:
    """Let the worker go on, all it runs; its disk mark gone (measured again next beat)."""
    store.remove(over_file(root, sid))
    return {"goes_on": hold.go_on(root, sid)}
