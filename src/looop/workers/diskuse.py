"""What a worker keeps in the folders it may fill (`writable` below), measured for its disk
bound: at home by the beat (loop/diskcheck.py), on an SSH host by its satellite.

Measuring never follows a symlink (a box's link to / counts as a link), counts the blocks a
file holds (a sparse file cannot hide its bytes, nor fake them), and stops once past the
bound or past MAX_ENTRIES entries a worker, so a box of a million empty files costs a bounded
walk: such a worker is said once, as not fully measured."""

from __future__ import annotations

import os
from typing import NamedTuple

from looop.home.paths import Paths

MAX_ENTRIES = 200_000  # a worker's entries walked in one beat


class Use:
    """What a worker keeps in its writable folders, as far as the walk went."""

    def __init__(self) -> None:
        self.total = 0
        self.folders: dict[str, int] = {}
        self.left = MAX_ENTRIES  # entries the walk may still visit

    @property
    def cut(self) -> bool:
        return self.left <= 0

    def biggest(self) -> tuple[str, int]:
        return max(self.folders.items(), key=lambda kv: kv[1], default=("", 0))


def _walk(top: str, mine: str, wid: str, use: Use, limit: int) -> int:
    """Bytes under `top` (blocks held), no symlink followed, until past `limit` or the
    entries run out; `mine`: only the top's entries named for the worker count."""
    total, stack, first = 0, [top], True
    while stack and use.left > 0 and use.total + total <= limit:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            first = False
            continue
        with it:
            for entry in it:
                if first and mine and not named_for(entry.name, wid):
                    continue
                use.left -= 1
                try:
                    st = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if use.left <= 0 or use.total + total > limit:
                    break
        first = False
    return total


def measure(paths: Paths, wid: str, limit: int, more: tuple[Writable, ...] = ()) -> Use:
    """Worker `wid`'s bytes in its writable folders (and `more`), the walk ending once past
    `limit`."""
    use = Use()
    for folder in (*writable(paths, wid), *more):
        if use.total > limit or use.cut:
            break
        if n := _walk(folder.path, folder.mine, wid, use, limit):
            use.folders[_shown(paths, folder.path, folder.mine, wid)] = n
            use.total += n
    return use


def _shown(paths: Paths, path: str, mine: str, wid: str) -> str:
    """A folder as the line names it: relative to the data dir where it is inside."""
    rel = os.path.relpath(path, paths.data)
    name = path if rel.startswith("..") else rel
    return os.path.join(name, wid + "*") if mine else name


def size(n: int) -> str:
    """Bytes as a line says them."""
    for unit, step in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} B"


# -- the folders a worker may fill: its room (workspace, TMPDIR and reports, beside the data
# dir), its checkout, and (an unsandboxed worker, or a home of before) its own entries in the
# data dir's shared reports/ and a checkout kept under worktrees/. One function, so the disk
# bound measures what a worker may write wherever those folders are.


class Writable(NamedTuple):
    """A folder a worker writes; `mine`: only the entries named for the worker count (a
    folder shared with the others), "" for every entry."""

    path: str
    mine: str


def writable(paths: Paths, wid: str) -> list[Writable]:
    room, kept = paths.rooms / wid, (paths.checkouts / wid, paths.worktrees / wid)
    whole = [Writable(str(p), "") for p in (room / "work", room / "tmp", room / "reports", *kept)]
    return [*whole, Writable(str(paths.reports), wid)]


def named_for(name: str, wid: str) -> bool:
    """Whether an entry of a shared folder is the worker's: `<id>`, or `<id>.<anything>`."""
    return name == wid or name.startswith(wid + ".")
