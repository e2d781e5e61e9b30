"""looop.sense: one beat's observation — user sensors plus system probes into snapshots/; and
what wakes a sleeping pulse before its interval (sensor_watches, worker_watches)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping

from looop.core.context import Ctx
from looop.core.readings import Reading
from looop.core.watchlines import resolve
from looop.home import store
from looop.home.config import Knobs
from looop.home.paths import Paths
from looop.home.sandboxpolicy import OFF, SandboxPolicy
from looop.sense.probes import Probe, default_probes, run_probes
from looop.sense.sensors import is_file, run_user_sensors, sensor_scripts, watch_lines
from looop.sessions.state import Session
from looop.views.workerrows import PULSE, Ends

__all__ = ["Probe", "Reading", "default_probes", "prune_snapshots", "run_probes", "sense"]


def prune_snapshots(paths: Paths, owned: Iterable[str]) -> list[str]:
    """Remove sensor-*/sys-* snapshots no sensor or probe produced; the file names removed."""
    keep = set(owned)
    try:
        with os.scandir(paths.snapshots) as it:
            names = sorted(e.name for e in it if _orphan(e, keep))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in names if store.remove(paths.snapshots / n)]


def _orphan(entry: os.DirEntry[str], keep: set[str]) -> bool:
    """A sensor-*.json/.err or sys-*.json regular file that no reading of this beat owns
    (stem and suffix as Path reads them: the suffix is the last dot's)."""
    stem, _, ext = entry.name.rpartition(".")  # no dot: no stem, so none of ours
    ours = (stem.startswith("sensor-") and ext in ("json", "err")) or (
        stem.startswith("sys-") and ext == "json"
    )
    return ours and stem not in keep and is_file(entry)


def sense(
    ctx: Ctx,
    knobs: Knobs,
    probes: Mapping[str, Probe] | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
    sandbox: SandboxPolicy | None = OFF,
    fleet: list[Session] | None = None,
    ends: Ends | None = None,
    drawn: dict[str, Reading] | None = None,
) -> list[Reading]:
    """Run every sensor and probe, publish snapshots, prune orphans, report one summary
    (`custom`: the runners' needs-input patterns, for the sessions probe; `sandbox`:
    shell_policy's, for the sensors no human vouched for — None when the config is unreadable;
    `fleet`: the sessions as this beat listed them already, None to list them here; `ends`: the
    pulse's memory of its finished workers' files, views/workerrows; `drawn`: its last
    reading of each probe, run_probes)."""
    started = ctx.clock.monotonic()
    readings = run_user_sensors(ctx, knobs, sandbox)
    chosen = default_probes(knobs, custom, fleet, ends) if probes is None else probes
    readings += run_probes(ctx, chosen, drawn)
    prune_snapshots(ctx.paths, (r.name for r in readings))
    secs = round(max(0.0, ctx.clock.monotonic() - started), 3)
    ev = ctx.events
    if ev.fmt == "json":
        for r in readings:
            if r.ok:
                ev.emit("ok", "sense.ok", f"{r.name} ({r.secs:.1f}s)", sensor=r.name, secs=r.secs)
            else:
                said = f"{r.name} failed ({r.secs:.1f}s) — {r.error}"
                ev.emit("error", "sense.fail", said, sensor=r.name, secs=r.secs, error=r.error)
    failed = [r.name for r in readings if not r.ok]
    ok, total = len(readings) - len(failed), len(readings)
    if failed:
        msg = f"{ok}/{total} sensors ok · failed: {', '.join(failed)}"
        ev.emit("error", "sense", msg, ok=ok, total=total, failed=failed, secs=secs)
    else:
        msg = f"{ok} sensors ok ({secs:.1f}s)"
        ev.emit("info", "sense", msg, ok=ok, total=total, failed=[], secs=secs)
    ev.record("sense_done")
    return readings


# ---- What wakes a sleeping pulse before its interval: the policy (PLAYBOOK.md, goals/,
# sensors/), the files and folders its sensors declare they read (`# looop:watch=PATH` among a
# script's first lines), and where a worker's transitions land (its status.json; a new ask or
# report). The woken beat runs every sensor and gates on the world hash as any beat does; only
# the pulse reads these, between beats, to arm its watcher.

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
