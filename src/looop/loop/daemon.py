"""`looop up` / `looop down` / bare `looop`: the pulse runs as the session `pulse`."""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import sys
from dataclasses import dataclass, field

from looop.contract.doorruns import end_runs
from looop.core.context import Ctx
from looop.home import homes, locks, revive, store
from looop.home.errors import CorruptState, LooopError
from looop.home.sessionfiles import socket_file
from looop.home.stamps import utc_stamp_ms
from looop.home.where import program_on, runtime_base
from looop.loop.heartbeat import heartbeat_path
from looop.remote.wing import kill_all, stop_links
from looop.sandbox import boxhost, srt
from looop.seed import ensure_data_dir
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn, stop_host
from looop.sessions.state import SessionError, get_session, list_sessions, settle_dead
from looop.sessions.sweep import home_sockets, request_at, sweep_home_sockets
from looop.views.status import beat_holder, pulse_pid
from looop.workers.resume import resume_dead

PULSE = "pulse"
READY_TIMEOUT_SECS = 15.0
PULSE_SIZE = (160, 50)


@dataclass(frozen=True)
class UpResult:
    started: bool
    pid: str
    log: str
    # workers started again on their conversation: (id, None) or (id, why it could not)
    resumed: tuple[tuple[str, str | None], ...] = ()
    restarting: str = ""  # its supervisor waits to restart it: why (no pid to show)


def pulse_log(ctx: Ctx) -> str:
    return str(ctx.paths.sessions / PULSE / "output.log")


def preflight(ctx: Ctx) -> None:
    """Refuse to start a pulse whose runner cannot possibly run."""
    cfg = ctx.config()
    r = cfg.runner()
    if r is None or not r.tick:
        raise LooopError(f"no tick command configured in {cfg.source} — run `looop init`")
    for which, cmd in (("tick", r.tick), ("worker", r.worker or "")):  # as `doctor` checks
        try:
            words = shlex.split(cmd)
        except ValueError as e:
            raise LooopError(
                f"runner '{r.name}' {which} command does not parse ({e}) — fix it in "
                f"{cfg.source} or run `looop init`"
            ) from None
        exe = ([w for w in words if "=" not in w.split("/")[0]] or [""])[0]
        if not exe or exe.startswith("$") or exe in ("env", "bash", "sh"):
            continue
        if program_on(exe, ctx.child_env().get("PATH")) is None:
            raise LooopError(
                f"runner '{r.name}' needs `{exe}`, which is not on PATH — install it "
                "or choose another runner with `looop init`"
            )


def refuse_strays(ctx: Ctx) -> None:
    """One home, one pulse: none starts while a pulse of this path still runs on a data dir
    that was removed or replaced (the runtime dir's registry finds it)."""
    stray = homes.strays(runtime_base(ctx.env), str(ctx.paths.data))
    if stray:
        pids = ", ".join(str(r["pid"]) for r in stray)
        raise LooopError(
            f"a pulse of {ctx.paths.data} is still running (pid {pids}) on a data dir that "
            "was removed or replaced — stop it with `looop down`, then `looop up`"
        )


def refuse_tick(holder: tuple[str, str] | None) -> None:
    """No pulse starts while a foreground `looop tick` holds the beat."""
    if holder is not None and holder[0] == "tick":
        raise LooopError(
            f"a foreground `looop tick` holds the beat (pid {holder[1]}) — start the "
            "pulse once it has finished"
        )


def start_detached(
    ctx: Ctx, json_log: bool = False, color: bool = False, revival: bool = False
) -> UpResult:
    """Start the pulse session unless a pulse holds the lock; two concurrent calls start one.
    From then on the pulse is wanted up (home/revive.py) until `down`. `revival`: `up --revive`,
    which a verb started on finding the pulse wanted and lost: it starts the pulse only if
    that still holds once it has `up`'s lock, with the lost supervisor's count and cause."""
    refuse_strays(ctx)  # before seeding: a refused `up` writes nothing
    if not ctx.paths.config.exists():  # as v1.0: starting never picks a runner for you
        raise LooopError(
            f"no config at {ctx.paths.config} — run `looop init` first (it picks the agent CLI "
            "that decides and works), then `looop up`"
        )
    ensure_data_dir(ctx.paths)
    with locks.dir_lock(ctx.paths.lock_dir / "up"):
        data = str(ctx.paths.data)
        wanted = revive.read_wanted(data)
        if revival and (wanted is None or revive.pending(data) is None):
            return UpResult(False, "", pulse_log(ctx))  # a `down`, or another revival, came first
        refuse_strays(ctx)
        holder = beat_holder(ctx.paths)
        refuse_tick(holder)
        if holder is None:
            cause = _restart_pending(ctx)
            if cause:
                return UpResult(False, "", pulse_log(ctx), (), restarting=cause)
            preflight(ctx)
        # workers with the `resume` policy whose session died without an end start again,
        # before the pulse's first beat, which would call their asks STRANDED
        try:
            resumed = tuple(resume_dead(ctx, ctx.knobs()))
        except (LooopError, OSError) as e:  # an unreadable fleet: the pulse still starts
            resumed = (("*", f"workers not resumed: {e}"),)
        if not revival:
            revive.want(data, ctx.clock, json_log, ctx.env.get("PATH"))
        elif wanted is not None:
            json_log = wanted.get("json_log") is True
        if holder is not None:
            # attaching to a running pulse needs no runner on this shell's PATH
            return UpResult(False, holder[1], pulse_log(ctx), resumed)
        _spawn_pulse(ctx, json_log, color, _history(wanted) if revival else None)
        return _await_ready(ctx, resumed)


def revive_pulse(ctx: Ctx) -> None:
    """`looop up --revive`: start the lost pulse again; why it could not goes in the record."""
    try:
        start_detached(ctx, revival=True)
    except LooopError as e:
        revive.failed(str(ctx.paths.data), str(e))


def _history(wanted: dict[str, object] | None) -> tuple[int, str] | None:
    """What a revival carries into the new session: the restart count and the cause."""
    rec = wanted or {}
    n, cause = rec.get("restarts"), rec.get("cause")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(cause, str):
        return None
    return n, cause


def _spawn_pulse(
    ctx: Ctx, json_log: bool, color: bool, history: tuple[int, str] | None = None
) -> None:
    """The pulse's session, supervised: restarted on a crash, watched by its heartbeat."""
    env = ctx.child_env(
        {
            "LOOOP_LOG_FORMAT": "json" if json_log else "human",
            "LOOOP_COLOR": "1" if color else "0",
        }
    )
    knobs = ctx.knobs()
    watchdog = knobs.real("pulse_watchdog_secs")
    try:
        spawn(
            ctx.paths.data,
            PULSE,
            [sys.executable, "-m", "looop", "pulse", "--no-seed"],  # `up` seeded it
            cwd=ctx.paths.data,
            env=env,
            size=PULSE_SIZE,
            host_idle_s=knobs.real("session_host_idle"),
            log_cap=knobs.log_cap(),
            # restartPolicy: on failure, with a doubling, capped delay
            restart=(knobs.real("pulse_restart_secs"), knobs.real("pulse_restart_max_secs")),
            final_exit=revive.HOME_LOST_EXIT,  # a lost data dir is not a crash: never restarted
            watchdog=(str(heartbeat_path(ctx)), watchdog) if watchdog > 0 else None,
            history=history,
        )
    except SessionError as e:
        raise LooopError(f"the pulse did not start: {e}") from e


def _await_ready(ctx: Ctx, resumed: tuple[tuple[str, str | None], ...]) -> UpResult:
    """Wait until the new pulse holds the lock and has named itself; else say why not."""
    deadline = ctx.clock.monotonic() + READY_TIMEOUT_SECS
    while ctx.clock.monotonic() < deadline:
        try:
            session = get_session(ctx.paths.data, PULSE)
        except SessionError:
            break
        pid = str(session.child_pid or "")
        # the new pulse holds the lock and has named itself: never an old pid file's pid
        if pid and locks.flock_held(ctx.paths.lock_file) and pulse_pid(ctx.paths) == pid:
            return UpResult(True, pid, pulse_log(ctx), resumed)
        if not session.alive:
            break
        select.select([], [], [], 0.05)  # the pulse takes its lock within milliseconds
    tail = store.tail_lines(ctx.paths.sessions / PULSE / "output.log", 1)
    why = tail[-1] if tail else "no output"
    raise LooopError(f"the pulse did not start: {why} — see {pulse_log(ctx)}")


@dataclass
class DownResult:
    was_running: bool = False
    pid: str = ""
    forced: bool = False
    workers: list[str] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)
    survivors_far: list[str] = field(default_factory=list)  # one line per remote worker left
    tick_pid: str = ""  # a foreground `looop tick` holding the beat (left to finish)
    kept: list[str] = field(default_factory=list)  # live workers left running on purpose
    leftovers: list[str] = field(default_factory=list)  # killed, but a process outlived SIGKILL
    strays: list[str] = field(default_factory=list)  # pids of pulses on a lost data dir
    orphans: list[str] = field(default_factory=list)  # child pids of a lost data dir's workers


def stop_all(ctx: Ctx, grace_s: float = 30.0, keep_workers: bool = False) -> DownResult:
    """Pulse first (so it cannot start a worker during the sweep), then every worker (unless
    keep_workers), then audit. First of all the pulse is no longer wanted: nothing brings it
    back (home/revive.py), and a revival that had `up`'s lock has finished starting it."""
    res = DownResult()
    _unwant(ctx)
    holder = beat_holder(ctx.paths)
    if holder is not None and holder[0] == "tick":
        res.tick_pid = holder[1]  # a human's one beat: it ends on its own
    elif holder is not None:
        res.was_running, res.pid = True, holder[1]
        res.forced = not _stop_pulse(ctx, res.pid, grace_s)
        with contextlib.suppress(SessionError):  # none: a foreground `looop pulse`
            wait(ctx.paths.data, PULSE, 5.0, ctx.clock)  # its supervisor records the exit
    if _end_pulse_session(ctx):  # between restarts: no beat to finish, nothing to wait for
        res.was_running = res.was_running or not res.tick_pid
    res.strays = _stop_strays(ctx, grace_s)
    if keep_workers:
        res.kept = [s.id for s in list_sessions(ctx.paths.data) if s.id != PULSE and s.alive]
        ctx.events.record("down", pulse=res.was_running, workers=[], kept=res.kept)
        return res
    # A worker whose supervisor was killed left its run's cgroup behind: it goes too.
    listed = list_sessions(ctx.paths.data)  # one listing: a dead one settled was not alive
    settle_dead(listed, utc_stamp_ms(ctx.clock.now()))
    for s in listed:
        if s.id == PULSE or not s.alive:
            continue
        with contextlib.suppress(SessionError):  # it finished on its own meanwhile
            if kill(ctx.paths.data, s.id).get("survivors"):
                res.leftovers.append(s.id)
            res.workers.append(s.id)
    if os.path.isdir(ctx.paths.hosts):
        far, failed = kill_all(ctx)
        res.workers += far
        res.survivors_far = failed
        stop_links(ctx)  # after: the kills went over them
    res.orphans = _kill_orphans(ctx)
    res.survivors = [s.id for s in list_sessions(ctx.paths.data) if s.alive]
    # No session depends on the session host: with the fleet down this home's goes too (the
    # next start brings one up again); other data dirs' hosts are theirs.
    base, data = runtime_base(ctx.env), str(ctx.paths.data)
    stop_host(base, data)
    prog = srt.srt_program(dict(ctx.env))  # no box of the home is left to filter
    boxhost.stop(base, data, boxhost.library(prog) if prog is not None else None)
    # a worker's `ask` still waiting at a door goes with it: once the doors are shut, so no
    # call they were still serving starts one after
    end_runs(data, ctx.clock.monotonic)
    sweep_home_sockets(data)  # control sockets nobody listens on, the home's empty folders
    homes.sweep(base, data)
    ctx.events.record("down", pulse=res.was_running, workers=res.workers, survivors=res.survivors)
    return res


def _unwant(ctx: Ctx) -> None:
    """The pulse is no longer wanted up, under `up`'s lock (a revival holding it finishes
    first, and the stop that follows finds its pulse)."""
    if not ctx.paths.lock_dir.is_dir():  # never made here: a `down` of a home never up
        return
    try:
        with locks.dir_lock(ctx.paths.lock_dir / "up"):
            revive.unwant(str(ctx.paths.data))
    except OSError:  # a read-only data dir: no lock to take, and no revival could write
        revive.unwant(str(ctx.paths.data))


def _restart_pending(ctx: Ctx) -> str:
    """The last cause when the pulse's session lives with no pulse in it (a restart delay)."""
    try:
        s = get_session(ctx.paths.data, PULSE)
    except SessionError:
        return ""
    if not s.alive or s.child_pid:
        return ""
    try:
        st = store.read_json_object(ctx.paths.sessions / PULSE / "status.json") or {}
    except (CorruptState, OSError):
        st = {}
    return str(st.get("last_cause") or "restarting")


def _end_pulse_session(ctx: Ctx) -> bool:
    """Kill the pulse's session if it still lives (its supervisor waiting out a restart
    delay, or a pulse that stopped on SIGTERM while the supervisor restarted it). True if
    there was one to end."""
    try:
        if not get_session(ctx.paths.data, PULSE).alive:
            return False
        kill(ctx.paths.data, PULSE)
    except SessionError:
        return False
    return True


def _stop_strays(ctx: Ctx, grace_s: float) -> list[str]:
    """Pulses of this home on a data dir that was removed or replaced, found in the runtime
    dir: SIGTERM, then SIGKILL after the grace period; their pids."""
    base, data = runtime_base(ctx.env), str(ctx.paths.data)
    stopped = []
    for rec in homes.strays(base, data):
        pid = int(rec["pid"])
        _signal(pid, signal.SIGTERM)
        if not _await_gone(ctx, pid, grace_s):
            _signal(pid, signal.SIGKILL)
            _await_gone(ctx, pid, 5.0)
        stopped.append(str(pid))
    left = [str(r["pid"]) for r in homes.strays(base, data)]
    if left:
        raise LooopError(f"pulse pid {', '.join(left)} survived SIGKILL — check it with `ps`")
    return stopped


def _await_gone(ctx: Ctx, pid: int, secs: float) -> bool:
    """Wait for a stray pulse to exit; True once its registry entry is free."""
    _await_pid(pid, secs)
    return all(r["pid"] != pid for r in homes.live(runtime_base(ctx.env), str(ctx.paths.data)))


def _kill_orphans(ctx: Ctx) -> list[str]:
    """Workers of this home's path whose sessions no data dir shows any more (it was removed
    or replaced under them), found by their control sockets in the runtime dir: each is
    killed as `worker kill` does; the child pid of each."""
    data = str(ctx.paths.data)
    known = {socket_file(data, s.id) for s in list_sessions(ctx.paths.data)}
    killed = []
    for path in home_sockets(data):
        if path in known:
            continue
        st = request_at(path, "status", 5.0)
        if not isinstance(st, dict) or st.get("state") not in ("starting", "running"):
            continue  # a socket a killed supervisor left, or one that is finishing
        if request_at(path, "kill", 20.0) is not None:
            killed.append(str(st.get("child_pid") or "?"))
    return killed


def _stop_pulse(ctx: Ctx, pid_s: str, grace_s: float) -> bool:
    """SIGTERM: the pulse finishes its beat. True if it stopped within the grace period."""
    if not pid_s.isdigit():
        raise LooopError(
            f"a pulse holds {ctx.paths.lock_file} but {ctx.paths.pid_file} names no "
            "pid — stop it by hand (fuser -k on the lock file)"
        )
    pid = int(pid_s)
    _signal(pid, signal.SIGTERM)
    if _await_exit(ctx, pid, grace_s):
        return True
    _end_pulse_session(ctx)
    _signal(pid, signal.SIGKILL)
    if not _await_exit(ctx, pid, 5.0):
        raise LooopError(f"pulse pid {pid} survived SIGKILL — check it with `ps {pid}`")
    return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _await_exit(ctx: Ctx, pid: int, secs: float) -> bool:
    """Wait for the pulse to exit, then confirm the kernel dropped its lock (it dies with the
    process; a beat in a forked child cannot hold it)."""
    _await_pid(pid, secs)
    return not locks.flock_held(ctx.paths.lock_file)


def _await_pid(pid: int, secs: float) -> None:
    """Wait on a pidfd, at most `secs`, for a process to exit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], secs)
    finally:
        os.close(fd)
