"""What wakes a sleeping pulse before its interval: the policy (PLAYBOOK.md, goals/,
sensors/), the files and folders its sensors declare they read (`# looop:watch=PATH` among a
script's first lines, several allowed), and where a worker's transitions land (its session's
status.json: it exits or starts; a new ask; a new report). The woken beat runs every sensor and
gates on the world hash as any beat does. Apart from running the sensors because only the
pulse reads it, between beats, to arm its watcher; a beat never does."""

from __future__ import annotations

import contextlib
import os

from looop.core.context import Ctx
from looop.core.watchlines import resolve
from looop.sense.sensors import sensor_scripts, watch_lines
from looop.views.workerrows import PULSE

MAX_WATCHES = 256  # a home's own sensors; past this the interval alone wakes the rest


def sensor_watches(ctx: Ctx) -> list[str]:
    """The policy the world hash reads (a new sensor runs, its watches armed, at once), then
    every sensor's declared paths, resolved, each once."""
    p = ctx.paths
    seen: dict[str, None] = dict.fromkeys((str(p.playbook), str(p.goals), str(p.sensors)))
    for script in sensor_scripts(ctx.paths):
        for written in watch_lines(script):
            seen.setdefault(resolve(ctx, written), None)
    return list(seen)[:MAX_WATCHES]


def worker_watches(ctx: Ctx) -> tuple[list[str], list[str]]:
    """Where a worker's transition shows: the sessions, asks and reports folders (one
    started, asked, reported); and each worker's status.json itself (its run started or
    ended, its quiet screen asks), never its folder, where the output log grows with every
    line a worker prints."""
    p = ctx.paths
    folders = [str(p.sessions), str(p.asks), str(p.reports)]
    files = []
    # no sessions yet: the folder's own watch sees the first
    with contextlib.suppress(OSError), os.scandir(p.sessions) as it:
        # not the pulse's own: what its screen says (a prompt seen, sessions/lifecycle)
        # would wake it to print, and so to be judged again
        files = [os.path.join(e.path, "status.json") for e in it if e.is_dir() and e.name != PULSE]
    return folders, files[:MAX_WATCHES]
