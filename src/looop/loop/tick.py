"""One beat: sense -> hash -> gate -> prompt -> runner -> one decision -> journal -> commit.

Each gate is a small function that ends the beat (returns its outcome) or lets it go on
(None); past every gate, one decide (`deciding`: the spend breakers, the runner, settling),
loaded only then. What a beat carries is `beat.Beat`; a beat that raised is `crashed`: one
line for the human and the model, the trace kept for a developer, the crash counted as a
failure (light on purpose: a crash can come before the gates end)."""

from __future__ import annotations

import contextlib
import errno
import os
import traceback
from collections.abc import Callable
from pathlib import Path

from looop.act.wal import check_interrupted
from looop.core.context import Ctx
from looop.core.readings import Snapshot
from looop.home import locks, store
from looop.home.errors import CorruptState, LooopError
from looop.home.locks import beat_holder_at
from looop.home.paths import Paths
from looop.loop import alerts, flap, guards

# TickOutcome and the dry-run pieces are re-exported: the pulse, cli and tests import them here
from looop.loop.beat import Beat, TickOutcome, resolve_config
from looop.loop.diskcheck import fullest
from looop.loop.homeguard import refuse_unsafe
from looop.loop.housekeep import housekeep_sessions, tend_workers
from looop.loop.world import WorldMemo, read_world
from looop.seed import ensure_data_dir
from looop.sense import sense
from looop.workers import needsinput
from looop.workers.rounddelivery import deliver_waiting

Gate = Callable[[Beat], TickOutcome | None]


def busy_message(holder: tuple[str, str] | None) -> str:
    """Why a foreground beat cannot run now: who holds the beat lock."""
    if holder is not None and holder[0] == "tick":
        return (
            f"another tick holds the beat (pid {holder[1]}) — wait for it to finish, "
            "or see it with `looop status`"
        )
    pid = f" (pid {holder[1]})" if holder is not None and holder[1] else ""
    return (
        f"a pulse is running{pid} and beats on its own — `looop down` first, or "
        "watch it with `looop status`"
    )


def tick_pid_path(paths: Paths) -> Path:
    """loop.status.tick_pid_file, without loading status (its spend readers) on every beat."""
    return paths.lock_dir / "tick.pid"


def tick_once(ctx: Ctx, force: bool) -> TickOutcome:
    """One beat in the foreground (`looop tick`): it holds the beat lock like a pulse, and
    names itself in tick.pid so `looop status` can tell it from a pulse. LooopError when
    a pulse or another tick holds the beat; --force also runs through a backoff."""
    refuse_unsafe(ctx.paths)  # another user's .decision.json would run as the owner
    fd = locks.try_flock(ctx.paths.lock_file)
    if fd is None:
        raise LooopError(busy_message(beat_holder_at(os.fspath(ctx.paths.data))))
    pid_file = tick_pid_path(ctx.paths)
    try:
        with contextlib.suppress(OSError):  # a full disk: the beat itself says so in its own words
            # `looop status` names the holder; it is gone when the beat ends: no fsync
            store.atomic_write(pid_file, f"{os.getpid()}\n", durable=False)
        why = None
        if not force:  # a nudge the decider asked for is honoured as a pulse honours it
            wake = guards.next_wake(ctx.paths)
            if wake is not None and wake <= ctx.clock.now():
                why = "the follow-up you asked for (next_interval_s) is due"
        out = tick(ctx, force=force or why is not None, override_backoff=force, why_forced=why)
        if why is not None and out.decided and out.next_interval_s is None:
            guards.clear_next_wake(ctx.paths)  # the follow-up it asked for has happened
        return out
    finally:
        store.remove(pid_file)
        os.close(fd)


def tick(
    ctx: Ctx,
    force: bool = False,
    dry_run: bool = False,
    override_backoff: bool = False,
    memo: WorldMemo | None = None,
    slept: float | None = None,
    seed: bool = True,
    why_forced: str | None = None,
) -> TickOutcome:
    """One beat (reference core §7 with the SPEC §3 decisions); never raises but LooopError.

    Any other exception is a failed beat like a bad decision: backoff armed, LAST FAILURE for
    the next prompt, the failure-streak alert. Without that, a crash after the runner would
    pay the runner again every beat and the model would never learn why.

    dry_run: pass a `dry_run_ctx`; the beat then skips every write (housekeeping, flapping,
    seeding). override_backoff: a human's `tick --force` runs now despite failures.
    slept: how long the pulse slept before this beat (coalescing: coalesce_left).
    seed: False under a pulse, which never seeds a data dir it did not start on.
    why_forced: what forced it, said in the prompt when the world did not change."""
    beat = Beat(
        ctx,
        TickOutcome(),
        force,
        dry_run,
        override_backoff,
        memo=memo,
        slept=slept,
        seed=seed,
        why_forced=why_forced,
    )
    try:
        return _beat(beat)
    except LooopError as e:
        if not beat.out.decided:
            raise  # before the runner: the caller shows the one line (bad config, data dir)
        return crashed(beat, e)
    except Exception as e:
        return crashed(beat, e)


def _beat(b: Beat) -> TickOutcome:
    """Resolve the config, tend the house, then each gate in order: the first to answer ends
    the beat; past them all, one decide (its spend breakers first)."""
    ctx = b.ctx
    if not b.dry_run:
        ensure_data_dir(ctx.paths, seed=b.seed)  # seeds a missing config: read it after this
        ctx.events.record("tick_start", forced=b.force)
    b.cfg, b.cfg_error, b.knobs = resolve_config(ctx)
    b.out.knobs = b.knobs
    if not b.dry_run:
        # housekeeping: a side effect interrupted by a crash is reported once, never re-run
        check_interrupted(ctx, b.knobs)
        # one listing of the sessions, each worker's status read once, through the beat
        listed = housekeep_sessions(ctx, b.knobs, b.cfg, b.memo.kept if b.memo else None)
        b.fleet = tend_workers(ctx, b.cfg, b.knobs, listed, b.memo)
    gates: tuple[Gate, ...] = (
        _gate_sense,
        _gate_flapping,
        _gate_unchanged,
        _gate_coalesce,
        _gate_limited,
        _gate_backoff,
        _gate_runner,
    )
    for gate in gates:
        done = gate(b)
        if done is not None:
            return done
    # The beat's one door: the world changed, so only now the spend policy, the runner, the
    # executor, the prompt and settling load.
    # lazy: a skip beat never pays for the decide machinery
    from looop.loop.deciding import decide

    return decide(b, lambda: _last_world(b))


FULL = os.strerror(errno.ENOSPC)  # how a reading says its snapshot hit a full disk


def _gate_sense(b: Beat) -> TickOutcome | None:
    """Sense; a reading that could not be written ends the beat (never decide on a stale world)."""
    ctx, ev = b.ctx, b.ctx.events
    cfg = b.cfg
    custom = needsinput.custom_patterns(cfg.runners) if cfg else None
    sandbox = cfg.shell_policy.sandbox if cfg is not None else None  # None: fail closed
    ends, drawn = (b.memo.ends, b.memo.drawn) if b.memo else (None, None)
    readings = sense(
        ctx, b.k, custom=custom, sandbox=sandbox, fleet=b.fleet, ends=ends, drawn=drawn
    )
    b.out.notes = [r.name for r in readings if not r.ok]
    stale = [r for r in readings if r.unrecorded]
    if stale:
        # An unwritten snapshot leaves the last beat's reading on disk: deciding (or skipping)
        # on that would act on a world that is no longer true.
        full = any(FULL in (r.error or "") for r in stale)
        who = fullest(ctx.paths) if full else ""  # a full disk: who filled it
        msg = (
            f"cannot record the world ({stale[0].error}"
            + (f"; {len(stale) - 1} more" if len(stale) > 1 else "")
            + ") — free space or fix permissions in the data dir; no decision on a stale world"
            + (f" ({who})" if who else "")
        )
        ev.emit("error", "tick.error", msg, unrecorded=[r.name for r in stale])
        ev.record("tick_unrecorded", sensors=[r.name for r in stale])
        return b.stop("error", msg)
    known = {f"{r.name}.json": r.body for r in readings if r.body is not None}
    b.out.world = read_world(ctx.paths, b.memo, known)
    b.snapshot = Snapshot.of(b.out.world.hash, readings)
    if not b.dry_run:  # once per worker entering needs-input
        needsinput.tell(ctx, b.cfg, b.snapshot.get("sys-sessions"))
        if (ctx.paths.data / "reviews").is_dir():  # rounds may wait for an idle worker
            deliver_waiting(ctx, b.k)
    return None


def _gate_flapping(b: Beat) -> TickOutcome | None:
    """Flap damping (loop/flap): a flapping sensor's signal is pinned, so its changes leave the
    world this beat gates and commits on; starting and settling are said once. Never ends the
    beat."""
    if b.dry_run:
        return None
    # v1.0's LOOOP_FLAP_STREAK=0 still turns flap detection off
    high = b.k.real("flap_high") if b.k.num("flap_streak") > 0 else 0.0
    low = b.k.real("flap_low")
    policy = flap.FlapPolicy(b.k.num("flap_window"), high, min(low, high))
    res = flap.track(b.ctx.paths, b.world.items, policy, lambda: _last_world(b))
    b.flap = res
    b.out.flapping = res.flapping
    ev = b.ctx.events
    for name in res.started:
        ev.emit(
            "warn",
            "sense.flapping",
            f"{name}'s signal keeps changing — its changes no longer wake the loop until it "
            "settles (move timestamps and counters into its detail)",
            sensor=name,
        )
        ev.record("sensor_flapping", sensor=name)
    for name in res.settled:
        said = f"{name} settled — its signal wakes the loop again"
        ev.emit("info", "sense.settled", said, sensor=name)
        ev.record("sensor_settled", sensor=name)
    if res.pinned:
        b.out.world = b.world.pinned(res.pinned)
    return None


def _gate_unchanged(b: Beat) -> TickOutcome | None:
    """Skip an unchanged world (unless forced, or its last noop is older than the TTL); an
    unreadable committed hash idles."""
    ctx, ev, world = b.ctx, b.ctx.events, b.world
    try:
        last = guards.read_last_hash(ctx.paths)
    except CorruptState as e:
        ev.emit("error", "tick.error", f"guard state unreadable, idling: {e}")
        ev.record("guard_corrupt", error=str(e))
        return b.stop("error", str(e))
    if world.hash == last and not b.force and not b.dry_run:
        if not guards.noop_expired(ctx.paths, world.hash, ctx.clock.now(), b.k.num("noop_ttl")):
            guards.coalesce_close(ctx.paths)  # a change that undid itself within the window
            ev.emit("info", "tick.skip", "world unchanged — no AI call")
            ev.record("world_unchanged")  # its only write: spend/savings.py counts it
            return b.stop("skip")
        ev.emit(
            "info",
            "tick.revisit",
            "world unchanged, but the last noop on it is older "
            "than LOOOP_NOOP_TTL — deciding again",
        )
        ev.record("noop_revisit")
        b.force = True
        ttl = int(b.k.num("noop_ttl"))
        b.why_forced = f"the last noop on this world is older than LOOOP_NOOP_TTL ({ttl}s)"
    if world.hash == last and b.force:
        why = b.why_forced or (
            "a human ran `looop tick --force`" if b.override_backoff else "the pulse forced it"
        )
        b.forced_unchanged = why
        ev.emit("info", "tick.forced", f"world unchanged but re-deciding ({why})")
    return None


def _gate_coalesce(b: Beat) -> TickOutcome | None:
    """A change seen by a pulse beating faster than the coalesce window waits for the window
    to end (more changes join it): one decide on the world as it is then."""
    if b.dry_run:
        return None
    window = b.k.num("coalesce")
    now = b.ctx.clock.now()
    if b.force or b.slept is None or window <= 0:
        guards.coalesce_close(b.ctx.paths)
        return None
    remain = guards.coalesce_left(b.ctx.paths, now, b.slept, window)
    if remain <= 0:
        return None
    ev = b.ctx.events
    ev.emit(
        "info",
        "tick.coalesce",
        f"world changed — deciding in {remain}s, with any change that comes meanwhile",
        secs=remain,
    )
    ev.record("coalescing", secs=remain)
    b.out.coalesce_s = remain
    return b.stop("coalesce")


def _gate_limited(b: Beat) -> TickOutcome | None:
    """The runner is at its provider's usage limit: no AI call until the reset (loop/alerts),
    unless a human forces the beat."""
    if b.dry_run or b.override_backoff:
        return None
    rec = alerts.limit_waiting(b.ctx)
    if rec is None:
        return None
    until = b.ctx.clock.offset_stamp_at(float(rec["until"]))
    msg = f"runner {rec.get('runner', '?')} is at its usage limit until {until} — no AI call"
    b.ctx.events.emit("info", "tick.limited", msg, until=rec["until"])
    b.ctx.events.record("provider_limited", runner=rec.get("runner"), until=rec["until"], wait=True)
    return b.stop("limited", msg)


def _gate_backoff(b: Beat) -> TickOutcome | None:
    """Wait out the failure backoff, unless a human forces the beat or the policy changed."""
    if b.dry_run:
        return None
    ev, now = b.ctx.events, b.ctx.clock.now()
    back = guards.read_backoff(b.ctx.paths, now, b.ctx.clock.monotonic())
    if back is None or back.fails <= 0:
        return None
    wait = guards.backoff_delay(back.fails, b.k.num("backoff_max_secs"))
    remain = int(wait - (now - back.ts))
    if remain > 0 and b.override_backoff:
        ev.emit(
            "warn",
            "tick.backoff_override",
            f"forced: running now despite {back.fails} failed beat(s) "
            f"(the backoff wanted ~{remain}s more)",
            fails=back.fails,
            retry_in_s=remain,
        )
        ev.record("tick_backoff_override", fails=back.fails)
        remain = 0
    if back.repaired:
        ev.emit(
            "warn",
            "tick.backoff_repaired",
            f"backoff record was unreadable; assuming {back.fails} failures",
        )
    if remain > 0 and back.phash and back.phash != b.world.policy_hash:
        ev.emit(
            "info", "tick.backoff_cut", "PLAYBOOK or goals edited since the failure — retrying now"
        )
        ev.record("tick_backoff_cut", fails=back.fails)
    elif remain > 0:
        ev.emit(
            "warn",
            "tick.backoff",
            f"last {back.fails} beat(s) failed — retry in ~{remain}s "
            "(editing PLAYBOOK or goals retries now)",
            fails=back.fails,
            retry_in_s=remain,
        )
        ev.record("tick_backoff", fails=back.fails, retry_in_s=remain)
        return b.stop("backoff")
    return None


def _gate_runner(b: Beat) -> TickOutcome | None:
    """A broken config, or no tick command: no AI and no backoff, so it retries every beat."""
    ev = b.ctx.events
    if b.cfg is None:
        ev.emit("error", "tick.error", f"config: {b.cfg_error}")
        ev.record("tick_error", reason=f"config: {b.cfg_error}")
        return b.stop("error", b.cfg_error)
    runner = b.cfg.runner()
    if runner is None or not runner.tick:
        name = b.cfg.default or "?"
        msg = f"no tick command for runner '{name}' in {b.cfg.source} — run `looop init`"
        ev.emit("error", "tick.error", msg, runner=name)
        ev.record("tick_error", reason=msg)
        return b.stop("error", msg)
    b.runner = runner
    return None


def _last_world(b: Beat) -> dict[str, str] | None:
    """The world the decider last saw: read at most once a beat, and only when asked for (a
    sensor starting to flap, or a prompt)."""
    if not b.last_world_read:
        b.last_world, b.last_world_read = guards.read_last_world(b.ctx.paths), True
    return b.last_world


# errors of the disk, not of the code: a failed beat that says so, never a crash with a trace
_THE_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _from_the_disk(exc: BaseException) -> bool:
    """Whether an error was caused (at any depth) by one of the disk's errors."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _THE_DISK:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def who_fills(paths: Paths, exc: OSError) -> str:
    """On a full disk, the worker keeping the most in its folders (loop/diskcheck)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        with contextlib.suppress(OSError):
            who = fullest(paths)
            return f" — {who}" if who else ""
    return ""


def crashed(b: Beat, exc: BaseException) -> TickOutcome:
    """A beat that raised: one line for the human and the model, the trace kept for a developer."""
    ctx, out = b.ctx, b.out
    trace = "".join(traceback.format_exception(exc))
    world = isinstance(exc, OSError) and exc.errno in _THE_DISK
    if isinstance(exc, LooopError):  # a refusal after the runner ran: its one line says it all
        error = f"beat failed: {' '.join(str(exc).split())}"[:500]
        if _from_the_disk(exc):
            trace = ""  # e.g. a move carried out whose record hit a full disk
    elif world:  # a full, read-only or failing disk: the world's fault, no trace to keep
        assert isinstance(exc, OSError)
        where = f" writing {exc.filename}" if exc.filename else ""
        error = f"beat failed: {exc.strerror or exc}{where}{who_fills(ctx.paths, exc)}"[:500]
        trace = ""
    else:
        error = f"beat crashed: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    out.status, out.error = ("error" if b.dry_run else "failed"), error
    if out.run_id is not None and trace:
        with contextlib.suppress(OSError):
            store.atomic_write(ctx.paths.run_dir(out.run_id) / "crash.txt", trace)
    ctx.events.emit("error", "tick.crash", error, run_id=out.run_id)
    # the same event either way (status and the dashboard end the beat on it); a disk's
    # error carries no trace
    extra = {"trace": trace[-4000:]} if trace else {}
    ctx.events.record("tick_crash", error=error, run_id=out.run_id, **extra)
    if b.dry_run:
        return out
    try:
        _record_crash(b, error)
    except Exception as e:  # e.g. a full disk: the beat still ends, and says so
        ctx.events.emit("error", "tick.crash", f"could not record the failed beat: {e}")
    return out


def _record_crash(b: Beat, error: str) -> None:
    """A crashed beat counts as a failure: backoff, LAST FAILURE, the streak alert, result."""
    ctx, out, world = b.ctx, b.out, b.out.world
    # a crash before the config was resolved (seeding) resolves it now, for the alert knob
    knobs = b.knobs if b.knobs is not None else resolve_config(ctx)[2]
    now = ctx.clock.now()
    hashes = (world.hash, world.policy_hash) if world else ("", "")
    fails = guards.record_failure(ctx.paths, now, *hashes, ctx.clock.monotonic())
    guards.write_last_failure(ctx.paths, now, out.run_id or "", "tick.crash", error, fails)
    replay = ctx.paths.rel(ctx.paths.run_dir(out.run_id)) if out.run_id else "no run"
    alerts.failure_streak(ctx, fails, knobs.num("notify_failure_streak"), error, replay, b.cfg)
    ctx.events.record("tick_failed", run_id=out.run_id, code="tick.crash", reason=error)
    if out.run_id is not None:
        store.write_json(
            ctx.paths.run_dir(out.run_id) / "result.json",
            {
                "v": 1,
                "run_id": out.run_id,
                "status": "failed",
                "code": "tick.crash",
                "error": error,
                "ts": int(now),
            },
        )
