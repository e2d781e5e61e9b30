"""The runs the home's doors started (contract/answering.py's `spawn_run`: an `ask` waiting on a
human, a `kill`), each in a session of its own so a restart of the door never cuts it: ended
by `looop down` with the fleet, since nothing else would.

A run is found by what it is, not by what its entry says: the session leader whose argv is
the door's own `sh -c WRAP sh DATA ENTRY …` with ENTRY in this home's `.contract/`. Its entry
is no guide: the `pid` is written only after the spawn (a full disk, or `down` reading in
between, leaves none), and a door that answered a worker gone ("its door is shut") put a
`code` there while the run, started for an earlier call, still waited on its human."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from looop.contract.answering import SH, STATE_DIR, WRAP
from looop.core.procstat import kill_group, stat_fields

SETTLE_S = 3.0  # how long the runs have to end on SIGTERM before they are killed
POLL_S = 0.05


def end_runs(
    data: str, monotonic: Callable[[], float], sig: int = 15, settle_s: float = SETTLE_S
) -> int:
    """`down`: every run of the home's doors still going ended with its session (`sig`, then
    SIGKILL for what still runs after `settle_s`), so nothing of it is left when `down`
    returns. How many runs were signalled."""
    runs = run_groups(data)
    left = set(runs)
    for each in (sig, 9):  # a SIGKILL too lands only once its process runs: it is waited for
        for pgid in left:
            kill_group(pgid, each)
        deadline = monotonic() + settle_s
        while (left := _live(left)) and monotonic() < deadline:
            time.sleep(POLL_S)  # nothing to wait on: they are not our children
    return len(runs)


def run_groups(data: str) -> set[int]:
    """The process groups (one per run: its `sh` leads its own session) of the runs of the
    home in `data` still going."""
    root = os.path.join(data, STATE_DIR) + "/"
    head = [SH.encode(), b"-c", WRAP.encode(), b"sh", data.encode()]
    found: set[int] = set()
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[:5] != head or len(argv) < 6 or not argv[5].startswith(root.encode()):
            continue
        got = _stat(pid)
        if got is not None and got[1] == pid and got[0] != "Z":  # the leader of its group
            found.add(pid)
    return found


def _pids() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdecimal()]
    except OSError:
        return []


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process; None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 3 or not fields[2].isdigit():
        return None
    return fields[0].decode(), int(fields[2])


def _live(groups: set[int]) -> set[int]:
    """Those of `groups` with a process still running in them (a zombie has ended)."""
    left: set[int] = set()
    for pid in _pids():
        got = _stat(pid)
        if got is not None and got[1] in groups and got[0] not in ("Z", "X"):
            left.add(got[1])
    return left
