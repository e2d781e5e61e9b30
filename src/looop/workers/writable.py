"""The folders a worker may fill: its room (workspace, TMPDIR and reports, beside the data
dir), its checkout, and — an unsandboxed worker, or a home of before — its own entries in the
data dir's shared reports/ (`reports/<id>.md`, `reports/<id>/`) and a checkout kept under
worktrees/. One function, so the disk bound (loop/diskcheck.py) measures what a worker may
write wherever those folders are."""

from __future__ import annotations

from typing import NamedTuple

from looop.home.paths import Paths


class Writable(NamedTuple):
    """A folder a worker writes; `mine`: only the entries named for the worker count (a
    folder shared with the others), "" for every entry."""

    path: str
    mine: str


def writable(paths: Paths, wid: str) -> list[Writable]:
    room = paths.rooms / wid
    return [
        Writable(str(room / "work"), ""),
        Writable(str(room / "tmp"), ""),
        Writable(str(room / "reports"), ""),
        Writable(str(paths.checkouts / wid), ""),
        Writable(str(paths.worktrees / wid), ""),
        Writable(str(paths.reports), wid),
    ]


def named_for(name: str, wid: str) -> bool:
    """Whether an entry of a shared folder is the worker's: `<id>`, or `<id>.<anything>`."""
    return name == wid or name.startswith(wid + ".")
