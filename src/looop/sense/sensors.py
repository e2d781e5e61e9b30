"""User sensors: every sensors/*.sh runs (at once, within the open-file limit) and leaves
exactly one snapshot; nothing a sensor starts outlives it. What each run leaves is judged in
sense/verdicts.py; what wakes a sleeping pulse, sense/__init__.py."""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import re
import resource
import shlex
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from looop.core import provenance
from looop.core.context import Ctx
from looop.core.pool import Pool, Run
from looop.core.proc import Spawner, Tail
from looop.core.procs import UNCONTAINED, Containment
from looop.core.readings import Reading
from looop.core.watchlines import changed_since, watch_in
from looop.home import store
from looop.home.config import Knobs
from looop.home.paths import Paths
from looop.home.sandboxpolicy import OFF, SandboxPolicy
from looop.sense.verdicts import EXIT_NOT_EXECUTABLE, EXIT_SPAWN, Verdict, failure_verdict, judge

GRACE_SECS = 0.3  # how long children left behind by an exited script may hold its pipes
ERR_KEEP = 64 * 1024  # stderr tail kept in the .err file
HEADER_LINES = 10
FDS_PER_SENSOR = 3  # what a running sensor holds open here: stdout, stderr, pidfd
FD_HEADROOM = 16  # one spawn's transient pipes, the selector, snapshot writes, /proc reads
MAX_CONCURRENT = 4096  # when the open-file limit is unlimited
SPAWN_RETRIES = 3  # out of files with none of ours running: someone else holds them
SPAWN_RETRY_SECS = 0.1
_INTERVAL = re.compile(rb"^\s*#.*\blooop:interval\s*=\s*(\d+)")


def sensor_scripts(paths: Paths) -> list[Path]:
    """Top-level regular `sensors/*.sh` (a symlink to one counts), sorted."""
    try:
        with os.scandir(paths.sensors) as it:
            # `*.sh` with a stem (as Path.suffix reads it: `.sh` alone is a dot file)
            names = [
                e.name for e in it if e.name.endswith(".sh") and e.name != ".sh" and is_file(e)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [paths.sensors / n for n in sorted(names)]


def is_file(entry: os.DirEntry[str]) -> bool:
    """A regular file (or a symlink to one); False when it cannot be told."""
    try:
        return entry.is_file()
    except OSError:
        return False


def interval_of(script: Path) -> int | None:
    """Seconds from a `# looop:interval=N` comment among the first lines, else None."""
    return _head(script)[1]


def watch_lines(script: Path) -> list[str]:
    """The PATHs of a script's `# looop:watch=PATH` lines, as written (none if unreadable)."""
    return _head(script)[2]


LINE_MAX = 4096  # a longer line counts as several, as readline(4096) reads it


def _head(script: Path) -> tuple[list[str], int | None, list[str]]:
    """How to run a script, its `# looop:interval=N` and its `# looop:watch=PATH`s, from one
    read: a script without a #! line runs under bash, as a shell would (no ENOEXEC)."""
    try:
        with store.open_regular(script) as f:
            head = f.read(HEADER_LINES * LINE_MAX)
    except OSError:
        return [str(script)], None, []
    argv = [str(script)] if head[:2] == b"#!" else ["bash", str(script)]
    buf = io.BytesIO(head)  # the first HEADER_LINES lines, as readline reads them
    lines = list(itertools.islice(iter(lambda: buf.readline(LINE_MAX), b""), HEADER_LINES))
    every = next((int(m.group(1)) for ln in lines if (m := _INTERVAL.match(ln))), None)
    return argv, every, watch_in([ln.rstrip(b"\n") for ln in lines])


# ------------------------------------------------------------------ publishing


def _publish(
    ctx: Ctx,
    name: str,
    started: float,
    verdict: Verdict,
    stderr: bytes,
    *,
    aged: bool = False,
    errs: set[str] | None = None,
) -> Reading:
    """Rename the snapshot into place; the .err file exists only when it has something.
    aged: the sensor has an interval, so an unchanged snapshot's mtime is its age.
    errs: the .err files there were when the beat began (None: unknown, so look)."""
    secs = round(max(0.0, ctx.clock.monotonic() - started), 3)
    snaps = ctx.paths.snapshots
    err = stderr
    if verdict.note:
        if err and not err.endswith(b"\n"):
            err += b"\n"
        err += f"looop: {verdict.note}\n".encode()
    snap = snaps / f"{name}.json"
    try:
        if not store.write_if_changed(snap, verdict.body) and aged:
            os.utime(snap)  # unchanged: only its age moves (`# looop:interval=N` reads it)
    except OSError as e:
        why = f"cannot write snapshots/{name}.json: {e.strerror or e}"
        return Reading(name, ok=False, secs=secs, error=why, unrecorded=True)
    # the stderr tail is a courtesy; the snapshot itself is in place
    with contextlib.suppress(OSError):
        if err:
            store.write_if_changed(snaps / f"{name}.err", err)
        elif errs is None or f"{name}.err" in errs:
            store.remove(snaps / f"{name}.err")
    return verdict.reading(name, secs)


def _err_files(paths: Paths) -> set[str] | None:
    """The .err files in snapshots/ now (None when it cannot be listed: then each is looked
    for): a quiet sensor's removal of its .err is then no failed unlink per beat."""
    try:
        return {n for n in os.listdir(paths.snapshots) if n.endswith(".err")}
    except OSError:
        return None


def _cached(
    ctx: Ctx, script: Path, name: str, every: int | None, watched: list[str]
) -> Reading | None:
    """The previous snapshot, when the script's interval says it is still fresh and nothing
    it watches changed since (a woken beat reads the change, not the cache)."""
    if not every:
        return None
    snap = ctx.paths.snapshots / f"{name}.json"
    try:
        snap_mtime = snap.stat().st_mtime
        if script.stat().st_mtime > snap_mtime:
            return None  # an edited script bypasses the window
        if watched and changed_since(ctx, watched, snap_mtime):
            return None
        raw = snap.read_bytes()
    except OSError:
        return None
    age = ctx.clock.now() - snap_mtime
    if not -1.0 < age < every:
        return None
    kept = Reading.from_json(name, raw, cached=True)
    if kept.failed:
        msg = kept.detail.get("message") if isinstance(kept.detail, dict) else None
        return replace(kept, ok=False, error=str(msg) if msg else "previous run failed")
    return kept


def _fd_budget() -> int:
    """How many sensors may run at once: the open-file soft limit, less what is already
    open and some headroom, divided by what one running sensor holds (two pipes, a pidfd)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONCURRENT
    try:
        in_use = len(os.listdir("/proc/self/fd")) - 1  # less the one listing it
    except OSError:
        try:
            in_use = len(os.listdir("/dev/fd")) - 1
        except OSError:
            in_use = FD_HEADROOM
    free = soft - max(in_use, 0) - FD_HEADROOM
    return max(1, min(MAX_CONCURRENT, free // FDS_PER_SENSOR))


def _emfile(e: OSError) -> bool:
    return e.errno in (errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM)


def _spawn_error(rel: str, e: OSError) -> str:
    """The real cause of a failed start, with the remedy that fits it."""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOENT, errno.ENOEXEC):
        return (
            f"{rel} could not start ({why}); give it a #! line naming an installed "
            "interpreter, e.g. #!/bin/sh"
        )
    if _emfile(e):
        return (
            f"{rel} could not start ({why}) even with no other sensor running; raise the "
            "open-file or process limit of looop (ulimit -n / ulimit -u)"
        )
    return f"{rel} could not start ({why}); check the script's permissions and interpreter"


def _start(
    ctx: Ctx,
    argv: list[str],
    name: str,
    env: dict[str, str],
    pool: Pool,
    spawner: Spawner,
    contain: Containment,
    limits: tuple[int, int],
) -> OSError | None:
    """Start one sensor into the pool (limits: its timeout and stdout cap); the OSError
    when the OS refused."""
    token = contain.token()
    started = ctx.clock.monotonic()  # its timeout counts from its own start
    try:
        proc = spawner.spawn(argv, cwd=ctx.paths.data, env=env, contain=contain, token=token)
    except OSError as e:
        return e
    timeout, cap = limits
    # the injected clock's monotonic time runs for real even in tests, so deadlines expire
    deadline = started + timeout if timeout > 0 else None
    out, err = Tail(None), Tail(ERR_KEEP)
    pool.add(Run(proc, deadline, out, err, cap, label=name, token=token, started=started))
    return None


def _confine(
    ctx: Ctx,
    pending: deque[tuple[str, Path, list[str]]],
    sandbox: SandboxPolicy | None,
    env: dict[str, str],
) -> dict[str, Verdict]:
    """With run_shell's sandbox on, every sensor but a human's (core/provenance: written
    with `looop sensor write` and unchanged since) runs inside srt under that policy: its
    argv in `pending` becomes srt's. `sandbox` None: the config could not be read, so such a
    sensor does not run at all. Returns the verdicts of those that cannot run."""
    confined: list[int] = []
    for i, (_, script, _) in enumerate(pending):
        try:
            content: bytes | None = store.read_regular(script)
        except OSError:
            content = None  # it fails to start on its own, with its own message
        if content is None or not provenance.by_human(
            ctx.paths, provenance.SENSOR, script.stem, content
        ):
            confined.append(i)
    if not confined:
        return {}
    if sandbox is None:
        msg = (
            "a sensor not written with `looop sensor write` runs only under shell_policy's "
            "sandbox, and the config cannot be read; fix the config"
        )
    else:
        # lazy: the sandbox room (srt, ~6 ms), for a decision's sensors only: most beats run none
        from looop.sandbox.worker import SENSOR_DIR, SENSOR_READS, SandboxError, shell_argvs

        lines = [shlex.join(pending[i][2]) for i in confined]
        try:
            what = "a decision's sensor"
            argvs = shell_argvs(ctx, sandbox, lines, env, what, SENSOR_DIR, SENSOR_READS)
        except (SandboxError, OSError) as e:
            msg = str(e) if isinstance(e, SandboxError) else f"cannot set up its sandbox: {e}"
        else:
            for i, argv in zip(confined, argvs, strict=True):
                name, script, _ = pending[i]
                pending[i] = (name, script, argv)
            return {}
    return {pending[i][0]: failure_verdict(EXIT_SPAWN, msg, b"", note=True) for i in confined}


def _unread(ctx: Ctx, pending: deque[tuple[str, Path, list[str]]]) -> dict[str, Verdict]:
    """With the shell sandbox off: a decision's sensor the tripwire cannot read (allowed only
    because the sandbox was on when it was written) does not run. One listing of vouched/;
    a human's sensor costs nothing more."""
    marked = provenance.unread_names(ctx.paths, provenance.SENSOR)
    if not marked:
        return {}
    failed: dict[str, Verdict] = {}
    for name, script, _ in pending:
        if script.stem not in marked:
            continue
        try:
            content = store.read_regular(script)
        except OSError:
            continue
        if provenance.is_unread(ctx.paths, provenance.SENSOR, script.stem, content):
            msg = (
                "a decision's sensor the tripwire cannot read runs only under shell_policy's "
                "sandbox, which is off now; turn it on, or remove the sensor"
            )
            failed[name] = failure_verdict(EXIT_NOT_EXECUTABLE, msg, b"", note=True)
    return failed


@dataclass
class _Round:
    """One beat's user sensors as they go: what each left, and which wait to start."""

    ctx: Ctx
    timeout: int
    cap: int
    env: dict[str, str]
    names: list[str]  # snapshot names, in script order: the order of the readings
    errs: set[str] | None  # the .err files there are (see _err_files)
    out: dict[str, Reading] = field(default_factory=dict)
    pending: deque[tuple[str, Path, list[str]]] = field(default_factory=deque)
    # name -> its `# looop:interval=N`: the snapshot's mtime is then its age
    every: dict[str, int] = field(default_factory=dict)
    slots: int = 0  # how many may run at once (see _fd_budget)
    refused: int = 0  # starts refused in a row while nothing of ours was running

    def failed(self, name: str, verdict: Verdict) -> None:
        """A sensor that did not run: its failure snapshot, published now."""
        at = self.ctx.clock.monotonic()
        self.out[name] = _publish(self.ctx, name, at, verdict, b"", aged=name in self.every)

    def readings(self) -> list[Reading]:
        return [replace(self.out[n], interval=self.every.get(n)) for n in self.names]


def run_user_sensors(ctx: Ctx, knobs: Knobs, sandbox: SandboxPolicy | None = OFF) -> list[Reading]:
    """Run every sensor, as many at once as the open-file limit allows (normally all): the
    beat costs the slowest one. Nothing a sensor started outlives it. `sandbox`: run_shell's
    (`shell_policy.sandbox`), which a sensor no human vouched for runs under (None: the
    config is unreadable, and such a sensor does not run). In steps: gather (cached, not
    executable), gate (sandbox or tripwire), then spawn and collect."""
    scripts = sensor_scripts(ctx.paths)
    if not scripts:
        return []
    rnd = _gather(ctx, knobs, scripts)
    _gate(rnd, sandbox)
    if rnd.pending:
        _spawn_all(rnd)
    return rnd.readings()


def _gather(ctx: Ctx, knobs: Knobs, scripts: list[Path]) -> _Round:
    """Each script read once: kept from an earlier beat, refused (not executable), or pending."""
    names = [f"sensor-{s.stem}" for s in scripts]
    rnd = _Round(
        ctx,
        knobs.num("sensor_timeout"),
        knobs.num("sensor_max_bytes"),
        ctx.child_env(),
        names,
        _err_files(ctx.paths),
    )
    for name, script in zip(names, scripts, strict=True):
        argv, every, watched = _head(script)
        if every:
            rnd.every[name] = every
        hit = _cached(ctx, script, name, every, watched)
        if hit is not None:
            rnd.out[name] = hit
        elif not os.access(script, os.X_OK):
            msg = f"{ctx.paths.rel(script)} is not executable; run: chmod +x {script}"
            rnd.failed(name, failure_verdict(EXIT_NOT_EXECUTABLE, msg, b"", note=True))
        else:
            rnd.pending.append((name, script, argv))
    return rnd


def _gate(rnd: _Round, sandbox: SandboxPolicy | None) -> None:
    """Sandbox on (or the config unreadable): the unvouched run confined or not at all; off:
    a decision's sensor the tripwire cannot read does not run."""
    if not rnd.pending:
        return
    if sandbox is None or sandbox.on:
        failed = _confine(rnd.ctx, rnd.pending, sandbox, rnd.env)
    else:
        failed = _unread(rnd.ctx, rnd.pending)
    for name, v in failed.items():
        rnd.failed(name, v)
    kept = [p for p in rnd.pending if p[0] not in failed]
    rnd.pending.clear()
    rnd.pending.extend(kept)


def _spawn_all(rnd: _Round) -> None:
    """Start what waits as slots allow and collect what ended, until all have ended."""
    ctx = rnd.ctx
    pool = Pool(ctx.clock, GRACE_SECS)
    contain = Containment(ctx.clock, shared=True, pen=ctx.pen)  # one cgroup a beat (a pen)
    spawner = Spawner()
    with contain:
        if not contain.active and UNCONTAINED not in ctx.warned:
            ctx.warned.add(UNCONTAINED)
            ctx.events.emit("warn", "sense.uncontained", UNCONTAINED)
        rnd.slots = _fd_budget()
        rnd.refused = 0
        try:
            while rnd.pending or pool.live:
                with contain.batch():  # one move into the beat's cgroup and out again
                    _start_some(rnd, pool, spawner, contain)
                _collect(rnd, pool, contain)
        finally:
            pool.abandon()


def _start_some(rnd: _Round, pool: Pool, spawner: Spawner, contain: Containment) -> None:
    """Start pending sensors while slots are free; out of files, wait or retry a moment."""
    ctx, pending = rnd.ctx, rnd.pending
    while pending and len(pool.live) < rnd.slots:
        name, script, argv = pending[0]
        err = _start(ctx, argv, name, rnd.env, pool, spawner, contain, (rnd.timeout, rnd.cap))
        if err is None:
            pending.popleft()
            rnd.refused = 0
            continue
        if _emfile(err) and pool.live:
            rnd.slots = len(pool.live)  # out of files: wait for one to finish
            break
        if _emfile(err) and rnd.refused < SPAWN_RETRIES:
            rnd.refused += 1
            pool.pause(SPAWN_RETRY_SECS)  # someone else holds them: a moment
            continue
        pending.popleft()
        rnd.refused = 0
        msg = _spawn_error(ctx.paths.rel(script), err)
        rnd.failed(name, failure_verdict(EXIT_SPAWN, msg, b"", note=True))


def _collect(rnd: _Round, pool: Pool, contain: Containment) -> None:
    """Publish the runs that ended, batch by batch, until a slot frees for a pending one."""
    for batch in pool.batches():
        for run in batch:
            contain.ended(run.token)
        left = contain.sweep()  # once for the runs that ended together
        for run in batch:
            verdict = judge(run, rnd.timeout, rnd.cap, left.get(run.token, 0))
            aged = run.label in rnd.every
            rnd.out[run.label] = _publish(
                rnd.ctx, run.label, run.started, verdict, run.err.data(), aged=aged, errs=rnd.errs
            )
        if rnd.pending:
            break  # a slot is free: start the next before waiting again
