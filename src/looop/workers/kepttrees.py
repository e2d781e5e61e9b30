"""Worktrees of workers that no longer run: listed (`looop worktrees`) and, when a reaped
worker left one dirty, expired by a stated policy that never loses work silently.

A dirty worktree is kept when its worker's session is reaped (worktree.release stamps
`kept_at`). It is kept `worktree_keep_days` (14) from then. Two days before the end a
worktree.expiring warning says when, and how to keep the work. At the end its work is saved
first — DATA/worktrees/<id>-<kept_at>.patch: every change since the branch's base, untracked
files as new files, binary included (`git apply` restores it) — and only then is the
worktree removed (its branch stays). A patch that cannot be made leaves the worktree where it
is, said again the next beat. Clones are listed, never expired (their work may be unpushed).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from looop.core.context import Ctx
from looop.home import store
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.sessions.state import list_sessions
from looop.workers.treerecord import Tree, load, parts_of, save
from looop.workers.treework import diff_out, is_dirty, tree_diff_runs
from looop.workers.worktree import release, release_checkout

DAY = 86400
WARN_DAYS = 2  # the warning comes this long before the end
GIT_PATCH_TIMEOUT_S = 120.0


class Kept(NamedTuple):
    tree: Tree
    state: str  # dirty | clean | unreadable | missing (its folder is gone)
    expires_at: int | None  # None: not kept by the policy (not yet reaped, or a clone)

    def row(self, now: float) -> dict[str, object]:
        t = self.tree
        return {
            "id": t.wid,
            "path": t.path,
            "branch": t.branch,
            "state": self.state,
            "kept_at": t.kept_at or None,
            "age_s": int(now - t.kept_at) if t.kept_at else None,
            "expires_at": self.expires_at,
        }


def _expires(tree: Tree, keep_days: int) -> int | None:
    return tree.kept_at + keep_days * DAY if tree.kept_at and not tree.clone else None


def _trees(ctx: Ctx, live: Collection[str] | None = None) -> list[Tree]:
    """Every worktree record whose checkout is not removed and whose worker does not run
    (`live`: the running workers' ids, as the beat listed them; None: listed here)."""
    folder = ctx.paths.worktrees
    try:
        names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    live = {s.id for s in list_sessions(ctx.paths.data) if s.alive} if live is None else live
    trees = (load(ctx, wid) for wid in names if wid not in live)
    # a worker of several repos: each checkout is kept, and expires, on its own
    return [each for t in trees if t is not None for each in parts_of(ctx, t) if not each.removed]


def kept_trees(ctx: Ctx, knobs: Knobs) -> list[Kept]:
    """What `looop worktrees` shows (asks git whether each is dirty)."""
    keep = knobs.num("worktree_keep_days")
    out = []
    for tree in _trees(ctx):
        if not os.path.isdir(tree.path):
            state = "missing"
        else:
            dirty = is_dirty(ctx.env, tree)
            state = "unreadable" if dirty is None else "dirty" if dirty else "clean"
        out.append(Kept(tree, state, _expires(tree, keep)))
    return out


def expire_kept(ctx: Ctx, knobs: Knobs, live: Collection[str] | None = None) -> None:
    """The policy, once a beat: a warning WARN_DAYS before the end, then the work saved as a
    patch and the worktree removed. No git call until one is due. `live`: as _trees takes."""
    keep = knobs.num("worktree_keep_days")
    now = ctx.clock.now()
    for tree in _trees(ctx, live):
        if (end := _expires(tree, keep)) is None:
            continue
        if now >= end:
            _expire(ctx, tree)
        elif now >= end - WARN_DAYS * DAY and not tree.warned:
            ctx.events.emit(
                "warn",
                "worktree.expiring",
                f"worker {tree.wid}: its kept worktree {tree.path} (branch {tree.branch}) "
                f"holds uncommitted work and goes in {(end - now) / DAY:.0f} day(s) "
                f"(worktree_keep_days {keep}); its work will be saved as "
                f"{ctx.paths.rel(_patch_path(ctx, tree))} — commit it to keep it in place",
                session=tree.wid,
            )
            save(ctx, tree._replace(warned=True))


def _patch_path(ctx: Ctx, tree: Tree) -> Path:
    name = f"{tree.wid}-{tree.part}" if tree.part else tree.wid
    return ctx.paths.worktrees / f"{name}-{tree.kept_at}.patch"


def _expire(ctx: Ctx, tree: Tree) -> None:
    path = _patch_path(ctx, tree)
    if (why := _save_patch(ctx, tree, path)) is not None:
        ctx.events.emit(
            "warn",
            "worktree.kept",
            f"worker {tree.wid}: its kept worktree {tree.path} is due to go, but its work "
            f"could not be saved ({why}); it stays until it can be",
            session=tree.wid,
        )
        return
    # removed with --force: its work is in the patch (of several repos: this checkout only)
    release_checkout(ctx, tree) if tree.part else release(ctx, tree.wid, clean=tree)
    gone = load(ctx, tree.wid, "" if tree.parts or not tree.part else tree.part)
    if gone is not None and gone.removed:
        ctx.events.emit(
            "warn",
            "worktree.expired",
            f"worker {tree.wid}: its kept worktree {tree.path} was removed after "
            f"worktree_keep_days; its uncommitted work is in {ctx.paths.rel(path)} "
            f"(`git -C <checkout of {tree.branch}> apply {path}`)",
            session=tree.wid,
        )
        ctx.events.record("worktree_expired", id=tree.wid, path=tree.path, patch=str(path))


def _save_patch(ctx: Ctx, tree: Tree, path: Path) -> str | None:
    """Write the worker's work as one patch; None when written, else why not."""
    if not os.path.isdir(tree.path):
        return None  # nothing left to save: the folder is gone
    try:
        store.atomic_write(
            path, diff_out(tree_diff_runs(ctx, tree, ("--binary",)), 0, GIT_PATCH_TIMEOUT_S)
        )
    except (OSError, ValueError, LooopError) as e:
        return str(e)
    return None
