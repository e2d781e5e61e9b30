"""The temp files `store.atomic_write` leaves behind when its writer dies (SIGKILL, power
loss): told by their name (`.NAME.tmp.PID.NONCE`), and swept once their writer is gone.
Apart from the pulse because it is a fact about the store's writes, not about beating: the
pulse only says when to sweep (`Pulse._sweep`), and the hot verbs never load this."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def _temp_owner(name: str) -> int | None:
    """The writer's pid when `name` is one of atomic_write's temp names, else None."""
    if not name.startswith(".") or ".tmp." not in name:
        return None
    pid, _, nonce = name.rpartition(".tmp.")[2].partition(".")
    if not pid.isdigit() or len(nonce) != 6:
        return None
    return int(pid)


def _pid_alive(pid: int) -> bool:
    """The process exists (also when it is someone else's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def sweep_temps(dirs: Iterable[Path], now: float, max_age: float = 3600.0) -> list[Path]:
    """Remove the temp files `store.atomic_write` left (`.NAME.tmp.PID.NONCE`) whose writer
    died (SIGKILL, power loss); only the pulse sweeps, so the hot verbs never load this.

    A temp is stale when its writer's pid is gone, or when it is older than max_age (the pid
    may have been reused). A live writer's fresh temp is never touched."""
    removed: list[Path] = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            pid = _temp_owner(entry.name)
            if pid is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if not entry.is_file(follow_symlinks=False):
                    continue
                if _pid_alive(pid) and now - st.st_mtime < max_age:
                    continue
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                continue
    return removed
