"""A pure read of the loop's state for `looop status`: never starts or changes anything."""

from __future__ import annotations

from looop.core import ljson, store
from looop.core.clock import parse_utc
from looop.core.config import load_config, resolve_knobs
from looop.core.errors import CorruptState, LooopError
from looop.decide.cost import spend_status
from looop.sessions.state import list_sessions

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from looop.core.clock import Clock
    from looop.core.config import Knobs, Runner
    from looop.core.context import Ctx
    from looop.core.paths import Paths
    from looop.decide.cost.views import SpendError, SpendStatus
    from looop.loop.views import (
        BeatView,
        LastTick,
        NextBeat,
        SchedulesView,
        Stamp,
        StatusView,
        WorkerView,
    )


def move_line(kind: str, journal: str) -> str:
    """`kind · journal`, without saying the kind twice when the journal line is the summary
    (`noop · settled`, `run-shell · make test`)."""
    first = journal.split(" ", 1)[0]
    return journal if kind and kind in first else f"{kind} · {journal}".rstrip(" ·")


# No Ctx here: `looop status` runs on the click-free fast path and must import little.

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # the one time format of status (local time)
EVENTS_SCAN_LINES = 400  # enough for a beat's records even with busy workers around it

# events.jsonl records that say how a beat ended -> the outcome shown
_BEAT_ENDS = {
    "decided": "decided",
    "world_unchanged": "skipped",
    "tick_backoff": "backoff",
    "tick_failed": "failed",
    "tick_crash": "failed",
    "tick_error": "error",
    "tick_unrecorded": "error",
    "guard_corrupt": "error",
    "budget_exceeded": "breaker",
    "budget_unmetered": "breaker",
    "decide_capped": "breaker",
}


def when(clock: Clock, ts: float | None) -> str:
    """`2026-06-21 10:00:00 (3m ago)` / `(in 2m)`: local time plus how far from now."""
    if ts is None:
        return "—"
    return f"{clock.local(ts).strftime(TIME_FORMAT)} ({relative(ts - clock.now())})"


def relative(delta: float) -> str:
    s = int(abs(delta))
    if s < 1:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            n = f"{s // size}{unit}"
            break
    return f"in {n}" if delta > 0 else f"{n} ago"


def _stamp(clock: Clock, ts: float | None) -> Stamp:
    """A time as JSON fields: unix seconds and the local form status prints."""
    if ts is None:
        return {"ts": None, "at": None}
    return {"ts": int(ts), "at": clock.local(ts).strftime(TIME_FORMAT)}


def _parse_ts(raw: Any) -> float | None:
    return parse_utc(raw) if isinstance(raw, str) else None


def _last_tick(paths: Paths, clock: Clock) -> LastTick | None:
    """When the world hash was last committed (the last successful decide)."""
    p = paths.last_tick_hash
    try:
        st = p.stat()
    except OSError:
        return None
    return {**_stamp(clock, st.st_mtime), "hash": _text(p).strip()}


def _text(p: Path) -> str:
    """A small state file's text; '' when missing or not a file (status never fails on one)."""
    try:
        return store.read_text(p) or ""
    except OSError:
        return ""


def _tail(p: Path, n: int) -> list[str]:
    try:
        return store.tail_lines(p, n)
    except OSError as e:
        return [f"({p.name} cannot be read: {e.strerror})"]


def _records(paths: Paths) -> list[dict[str, Any]]:
    out = []
    for line in _tail(paths.events, EVENTS_SCAN_LINES):
        try:
            obj = ljson.loads(line)
        except ValueError:
            continue  # a torn or hand-edited line
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            out.append(obj)
    return out


def _beat(records: list[dict[str, Any]], clock: Clock, holding: bool) -> BeatView | None:
    """The last beat from events.jsonl: when it started and how it ended."""
    start = max((i for i, r in enumerate(records) if r["event"] == "tick_start"), default=-1)
    if start < 0:
        return None
    started = _parse_ts(records[start].get("ts"))
    outcome, detail, run_id, ended = "", "", None, None
    deciding = False
    for r in records[start + 1 :]:
        ev = r["event"]
        if ev == "decide_start":
            deciding, run_id = True, r.get("run_id")
        if ev not in _BEAT_ENDS or (ev == "tick_crash" and outcome == "failed"):
            continue
        outcome, ended = _BEAT_ENDS[ev], _parse_ts(r.get("ts"))
        run_id = r.get("run_id") or run_id
        if ev == "decided":
            detail = move_line(str(r.get("action", "?")), str(r.get("journal") or ""))
        elif ev == "world_unchanged":
            detail = "world unchanged — no AI call"
        elif ev == "tick_backoff":
            detail = f"waiting out {r.get('fails', '?')} failure(s)"
        elif ev in ("budget_exceeded", "budget_unmetered", "decide_capped"):
            detail = ev.replace("_", " ")
        else:
            detail = str(r.get("reason") or r.get("error") or "")
    if not outcome:
        # no end recorded: either it runs now or its process died mid-beat
        outcome = ("deciding" if deciding else "running") if holding else "interrupted"
    return {
        **_stamp(clock, started),
        "outcome": outcome,
        "detail": " ".join(detail.split())[:300],
        "run_id": run_id,
        "ended_ts": int(ended) if ended is not None else None,
    }


def _next_beat(records: list[dict[str, Any]], clock: Clock, running: bool) -> NextBeat | None:
    """When the pulse said it would beat next (its last `pulse_sleep` record)."""
    if not running:
        return None
    for r in reversed(records):
        if r["event"] in ("tick_start", "pulse_start"):
            return None  # a beat is under way: no sleep announced yet
        if r["event"] == "pulse_sleep":
            ts = _parse_ts(r.get("until"))
            if ts is None:
                return None
            return {**_stamp(clock, ts), "reason": str(r.get("reason") or "")}
    return None


def _retry(paths: Paths, backoff: dict[str, Any] | None, knobs: Knobs | None) -> float | None:
    """When a backed-off beat may call the runner again (None when no backoff holds)."""
    if not backoff or knobs is None:
        return None
    fails, ts = backoff.get("fails"), backoff.get("ts")
    if not isinstance(fails, int) or fails <= 0 or not isinstance(ts, int | float):
        return None
    from looop.loop.guards import backoff_delay  # lazy: hot path: only a failing beat needs it

    return float(ts) + backoff_delay(fails, knobs.num("backoff_max_secs"))


def _read_obj(path: Any) -> dict[str, Any] | None:
    try:
        return store.read_json_object(path)
    except CorruptState as e:
        return {"error": str(e)}


def _spend(
    paths: Paths, clock: Clock, knobs: Knobs, runner: Runner | None
) -> SpendStatus | SpendError:
    try:
        return spend_status(paths, clock, knobs, runner)
    except CorruptState as e:
        return {"error": str(e)}


def _workers(paths: Paths) -> list[WorkerView]:
    try:
        sessions = list_sessions(paths.data)
    except OSError as e:
        return [{"error": f"cannot list sessions: {e.strerror}"}]
    return [
        {
            "id": s.id,
            "state": s.state,
            "label": s.label,
            "alive": s.alive,
            "exit_code": s.exit_code,
            "flagged": bool(s.note),
            "note": s.note,
        }
        for s in sessions
        if s.id != "pulse"
    ]


def _from_snapshot(paths: Paths, name: str) -> dict[str, Any] | None:
    """A system probe's last reading: what the pulse saw on its last beat, at no cost now."""
    return _read_obj(paths.snapshots / f"{name}.json")


def _schedules(paths: Paths) -> SchedulesView:
    snap = _from_snapshot(paths, "sys-schedules") or {}
    raw = snap.get("signal")
    signal: dict[str, Any] = raw if isinstance(raw, dict) else {}
    names = sorted(signal)
    due = [n for n in names if signal[n] == "due"]
    invalid = [n for n in names if signal[n] == "invalid"]
    return {"names": names, "due": due, "invalid": invalid}


def _asks(paths: Paths) -> list[str]:
    snap = _from_snapshot(paths, "sys-asks") or {}
    sig = snap.get("signal")
    return [str(x) for x in sig] if isinstance(sig, list) else []


def pulse_pid(paths: Paths) -> str:
    """The running pulse's pid as written in .lock/pid ('' when none)."""
    return _text(paths.pid_file).strip()


def tick_pid_file(paths: Paths) -> Path:
    """Where a foreground `looop tick` names itself while it holds the beat lock."""
    return paths.lock_dir / "tick.pid"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def beat_holder(paths: Paths) -> tuple[str, str] | None:
    """Who holds the beat lock: ("pulse", pid), ("tick", pid) or None. Each holder writes its
    pid file right after taking the lock, so a file left by a killed holder is the older one;
    a holder that has not written yet reads as a pulse with pid ''."""
    if not store.flock_held(paths.lock_file):
        return None
    tick_file = tick_pid_file(paths)
    tick_pid = _text(tick_file).strip()
    if tick_pid and _mtime(tick_file) >= _mtime(paths.pid_file):
        return "tick", tick_pid
    return "pulse", pulse_pid(paths)


def gather_status(paths: Paths, env: Mapping[str, str], clock: Clock) -> StatusView:
    p = paths
    holder = beat_holder(p)
    running = holder is not None and holder[0] == "pulse"
    pid = holder[1] if holder is not None and running else ""
    config_error = None
    runner = None
    knobs = None
    try:
        cfg = load_config(p.config)
        r = cfg.runner()
        runner = r.name if r else None
        knobs = resolve_knobs(cfg, env)
        interval = knobs.interval_for("idle")
        spend = _spend(paths, clock, knobs, r)
    except LooopError as e:
        config_error, interval, spend = str(e), None, None
    records = _records(p)
    backoff = _read_obj(p.backoff)
    fails = backoff.get("fails") if backoff else None
    streak = fails if isinstance(fails, int) and fails > 0 else 0
    retry = _retry(p, backoff, knobs)
    if holder is None:
        health = "stopped"
    elif not running:
        health = "tick"  # a foreground `looop tick` holds the beat, no pulse
    elif streak:
        health = "failing"
    else:
        health = "ok"
    journal_tail = _tail(p.journal, 3)
    goals = sorted(g.stem for g in p.goals.glob("*.md")) if p.goals.is_dir() else []
    return {
        "data_dir": str(p.data),
        "config": str(p.config),
        "config_error": config_error,
        "runner": runner,
        "now": _stamp(clock, clock.now()),
        "pulse": {"running": running, "pid": pid, "interval_s": interval},
        "health": health,
        "failing_streak": streak,
        "tick": {"pid": holder[1]} if holder is not None and not running else None,
        "last_beat": _beat(records, clock, holder is not None),
        "next_beat": _next_beat(records, clock, running),
        "retry": _stamp(clock, retry) if retry is not None else None,
        "last_tick": _last_tick(p, clock),
        "backoff": backoff,
        "last_failure": _read_obj(p.last_failure),
        "goals": goals,
        "journal_tail": journal_tail,
        "workers": _workers(p),
        "spend": spend,
        "asks": _asks(p),
        "schedules": _schedules(p),
    }


def status_json(st: StatusView) -> str:
    return ljson.dumps(st, indent=2, sort_keys=True, ensure_ascii=False)


def fleet_rows(ctx: Ctx, all_sessions: bool) -> list[dict[str, Any]]:
    """The pulse and the workers with health, ages and state, as `looop worker list` shows them."""
    # lazy: hot path: status shows no fleet
    from datetime import datetime

    from looop.workers.health import fleet_view

    sessions = list_sessions(ctx.paths.data)
    now = ctx.clock.now()
    rows = fleet_view(ctx, sessions, ctx.knobs().num("worker_stuck_secs"))
    if not all_sessions:
        rows = [r for r in rows if r["alive"]]
    for r in rows:
        if not r["alive"] and r["state"] in ("starting", "running"):
            r["state"] = "dead"  # its supervisor died: the file says running, the lock says not
        started = (
            datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).timestamp()
            if r.get("started_at")
            else None
        )
        r["up_s"] = now - started if started else None
        r["idle_s"] = now - r["last_output_unix"] if r.get("last_output_unix") else None
    holder = beat_holder(ctx.paths)
    pulse_up = holder is not None and holder[0] == "pulse"
    ticking = holder is not None and not pulse_up  # a foreground `looop tick`, not a pulse
    pulse = {
        "id": "pulse",
        "health": "up" if pulse_up else "down",
        "state": "running" if pulse_up else "tick" if ticking else "stopped",
        "label": "pulse",
        "verify": None,
        "up_s": None,
        "idle_s": None,
        "alive": pulse_up,
        "exit_code": None,
        "note": None,
    }
    return [pulse, *rows]
