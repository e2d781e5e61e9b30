"""The folders a worker may fill: its box's workspace and TMPDIR, its worktree, and its own
entries in the shared reports/ (`reports/<id>.md`, `reports/<id>/`). One function, so the disk
bound (loop/diskcheck.py) measures what a box may write wherever those folders move."""

from __future__ import annotations

from typing import NamedTuple

from looop.hot.paths import Paths


class Writable(NamedTuple):
    """A folder a worker writes; `mine`: only the entries named for the worker count (a
    folder shared with the others), "" for every entry."""

    path: str
    mine: str


def writable(paths: Paths, wid: str) -> list[Writable]:
    box = paths.sandbox / wid
    return [
        Writable(str(box / "work"), ""),
        Writable(str(box / "tmp"), ""),
        Writable(str(paths.worktrees / wid), ""),
        Writable(str(paths.reports), wid),
    ]


def named_for(name: str, wid: str) -> bool:
    """Whether an entry of a shared folder is the worker's: `<id>`, or `<id>.<anything>`."""
    return name == wid or name.startswith(wid + ".")
