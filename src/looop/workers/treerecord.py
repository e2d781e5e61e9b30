"""The record of a worker's checkout: DATA/worktrees/<id>.json says what it is (repo, branch,
base commit, its git dirs, a clone's URL), written before git makes anything so a crash in
between still leaves a record; read back fail-closed (an unreadable one is no record)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.hot import store
from looop.hot.errors import CorruptState, LooopError


class WorktreeError(LooopError):
    pass


@dataclass(frozen=True)
class Tree:
    wid: str
    repo: str  # the main repo's top folder
    branch: str
    base: str  # the commit the branch stood on when the worker started
    path: str  # the worktree
    common: str  # the main repo's git dir (objects, refs)
    gitdir: str  # the worktree's own admin folder in the main repo (HEAD, index, logs)
    created: bool = False  # this start made the branch (it was not there before)
    removed: bool = False  # the worktree is gone; the branch and this record stay
    origin: str = ""  # a clone's URL ("": a worktree of the repo at `repo`)

    @property
    def clone(self) -> bool:
        """A clone of its own (repo, common and gitdir all inside `path`), not a worktree."""
        return bool(self.origin)


def root(ctx: Ctx) -> Path:
    return ctx.paths.worktrees


def record_file(ctx: Ctx, wid: str) -> Path:
    return root(ctx) / f"{wid}.json"


def load(ctx: Ctx, wid: str) -> Tree | None:
    """The worker's worktree record, or None (never had one, or it is unreadable)."""
    try:
        raw = store.read_json_object(record_file(ctx, wid))
    except (CorruptState, OSError):
        return None
    return from_record(raw) if raw else None


def from_record(raw: Mapping[str, Any]) -> Tree | None:
    try:
        return Tree(**{k: raw[k] for k in Tree.__dataclass_fields__ if k in raw})
    except TypeError:
        return None


def save(ctx: Ctx, tree: Tree) -> None:
    store.atomic_write(record_file(ctx, tree.wid), json.dumps(asdict(tree), indent=2) + "\n")
