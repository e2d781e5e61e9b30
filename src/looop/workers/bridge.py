"""A satellite's bridge, started when it is needed: the one process per satellite that
carries its sandboxed workers' contract verbs home from their drop boxes (the bridge itself
is remote/ssh/boxed.py). Here in `workers/` because a worker resumed on an SSH host
(workers/resume.py) needs its bridge again, and the worker rooms never import `remote/`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from looop.home import locks

BRIDGE_LOCK = ".bridge.lock"  # held by the live bridge of a satellite data dir


def ensure_bridge(root: Path, bin: str, env: dict[str, str]) -> None:
    """Start this satellite's bridge unless one holds its lock (it takes the lock itself)."""
    if locks.flock_held(str(root / BRIDGE_LOCK)):
        return
    with open(root / ".bridge.err", "ab") as err:
        subprocess.Popen(
            [bin, "satellite", root.name, "bridge"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # outlives the satellite call that started it
            env=env,
            cwd=str(root),
        )
