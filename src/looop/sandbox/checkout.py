"""What a sandboxed worker may write in its worktree for git to work from inside (and what
stays locked there), and what srt itself would keep read-only in a folder it starts in."""

from __future__ import annotations

import os
from typing import Protocol


class Checkout(Protocol):
    """A worker's checkout as its box needs it (workers/treerecord.Tree is one)."""

    @property
    def path(self) -> str: ...  # the worktree
    @property
    def gitdir(self) -> str: ...  # the worktree's own admin folder (HEAD, index, logs)
    @property
    def common(self) -> str: ...  # the main repo's git dir (objects, refs)
    @property
    def branch(self) -> str: ...


def sandbox_write(tree: Checkout) -> tuple[list[str], list[str]]:
    """What a sandboxed worker writes for git to work from inside, and what stays locked.

    Writable: the worktree; its admin folder (HEAD, index, its logs); the objects folder (a
    commit adds objects); the folder of its branch's ref and of that ref's log (git writes
    `<ref>.lock` beside the ref and renames it). Locked: the packs and objects/info (the
    repo's packed history; no alternates planted) and every other branch ref in that folder.
    Also locked: the worktree's `.git` file, the admin folder's `commondir` and `gitdir`
    (where the git dirs are) and its `config.worktree`. The main repo's own HEAD, index,
    config, hooks and working tree stay read-only."""

    common = tree.common
    objects = os.path.join(common, "objects")
    ref = os.path.join(common, "refs", "heads", *tree.branch.split("/"))
    log = os.path.join(common, "logs", "refs", "heads", *tree.branch.split("/"))
    ref_dir, log_dir = os.path.dirname(ref), os.path.dirname(log)
    for d in (ref_dir, log_dir):
        os.makedirs(d, exist_ok=True)
    write = [tree.path, tree.gitdir, objects, ref_dir, log_dir]
    locked = [os.path.join(objects, "pack"), os.path.join(objects, "info")]
    # the files that say where the git dirs are, and the per-worktree config: a worker that
    # rewrote them would have git run by a human in its worktree read a config of its making
    # (whose settings run commands). Locked only what exists: make the config, empty.
    own_config = os.path.join(tree.gitdir, "config.worktree")
    if not os.path.lexists(own_config):
        with open(own_config, "a", encoding="utf-8"):
            pass
    locked += srt_guarded(tree.path)
    locked += [
        os.path.join(tree.path, ".git"),
        os.path.join(tree.gitdir, "commondir"),
        os.path.join(tree.gitdir, "gitdir"),
        own_config,
    ]
    for d, mine in ((ref_dir, ref), (log_dir, log)):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            names = []
        for name in names:
            got = os.path.join(d, name)
            if got != mine and not name.endswith(".lock"):
                locked.append(got)
    return write, [p for p in locked if os.path.lexists(p)]


# srt's own write protection (0.0.83's "mandatory denies"): names whose contents run code in
# a shell, an editor or an agent CLI opened there, and a nested repo's hooks and config.
SRT_FILES = frozenset({
    ".gitconfig", ".gitmodules", ".bashrc", ".bash_profile", ".zshrc", ".zprofile", ".profile",
    ".ripgreprc", ".mcp.json",
})  # fmt: skip
SRT_DIRS = frozenset({".vscode", ".idea"})
SRT_INNER = {".claude": ("commands", "agents"), ".git": ("hooks", "config")}
SRT_DEPTH = 3  # srt's default search depth below its working directory


def srt_guarded(top: str) -> list[str]:
    """What srt itself would keep read-only in a worktree it started in, of what exists there.
    A sandboxed worker's srt starts elsewhere, so that its placeholders for the names missing
    never land in the worktree; these come back as looop's own denies. Counted as srt counts:
    a named file down to SRT_DEPTH - 1 folders deep, a named folder (or what is inside
    .claude, or a nested .git) one less; case ignored, no symlink followed, node_modules
    skipped."""
    out: list[str] = []

    def walk(folder: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            low = e.name.lower()
            if low in SRT_FILES:
                out.append(e.path)
            elif depth > SRT_DEPTH - 2:
                continue  # only files this deep
            elif low in SRT_DIRS:
                out.append(e.path)
            elif low in SRT_INNER:
                inside = (os.path.join(e.path, n) for n in SRT_INNER[low])
                out.extend(p for p in inside if os.path.lexists(p))
            elif low != "node_modules" and _is_dir(e):
                walk(e.path, depth + 1)

    walk(top, 0)
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
