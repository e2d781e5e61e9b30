"""The runs the home's doors started (core/answering.py's `spawn_run`: an `ask` waiting on a
human, a `kill`), each in a session of its own so a restart of the door never cuts it: ended
by `looop down` with the fleet, since nothing else would."""

from __future__ import annotations

import os

from looop.core.answering import STATE_DIR
from looop.home import store


def end_runs(data: str, sig: int = 15) -> int:
    """`down`: every run of the home's doors still going (an `ask` waiting on a human) ended
    with its session; a run is known by its entry's pid and its own argv naming that entry
    (a reused pid is left alone). How many were signalled."""
    n = 0
    root = os.path.join(data, STATE_DIR)
    runs = [os.path.join(root, w, k) for w in _names(root) for k in _names(os.path.join(root, w))]
    for d in runs:
        raw = (store.read_text(os.path.join(d, "pid")) or "").strip()
        if not raw.isdecimal() or os.path.exists(os.path.join(d, "code")):
            continue
        try:
            with open(f"/proc/{raw}/cmdline", "rb") as f:
                if d.encode() not in f.read().split(b"\0"):
                    continue
            os.killpg(int(raw), sig)  # its own session: the sh, the verb and theirs
            n += 1
        except OSError:
            continue
    return n


def _names(folder: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
