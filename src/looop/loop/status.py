"""A pure read of the loop's state for `looop status`: never starts or changes anything."""

from __future__ import annotations

import os
import time

from looop.core import homes, ljson, store, where
from looop.core.config import load_config, resolve_knobs
from looop.core.errors import CorruptState, LooopError
from looop.core.stamps import parse_utc
from looop.core.where import runtime_base
from looop.loop.fleet import beat_holder_at
from looop.loop.fleet import fleet_rows as fleet_rows  # moved: the old name keeps working
from looop.loop.fleet import fleet_rows_at as fleet_rows_at
from looop.sessions.wire import count_ids, list_light, lock_held, read_status

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from looop.core.clock import Clock
    from looop.core.config import Knobs, Runner
    from looop.core.paths import Paths
    from looop.decide.cost.views import SpendError, SpendStatus
    from looop.loop.views import (
        BeatView,
        LastTick,
        LimitedView,
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


# No Ctx and no pathlib here: `looop status` runs on the click-free fast path and must import
# little. Its reads take the data dir and config file as plain strings (core/where.py).

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # the one time format of status (local time)
EVENTS_SCAN_LINES = 400  # enough for a beat's records even with busy workers around it
EVENTS_SHORT_TAIL = 40  # where a quiet beat's records are: read first (a beat writes ~5)

# events.jsonl records that say how a beat ended -> the outcome shown (the web's beats too)
BEAT_ENDS = {
    "decided": "decided",
    "world_unchanged": "skipped",
    "tick_backoff": "backoff",
    "coalescing": "coalescing",
    "provider_limited": "limited",
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
    return f"{local_text(clock, ts)} ({relative(ts - clock.now())})"


def local_text(clock: Clock, ts: float) -> str:
    """A time as status prints it: local, to the second."""
    return time.strftime(TIME_FORMAT, clock.local_tm(ts))


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
    return {"ts": int(ts), "at": local_text(clock, ts)}


def _parse_ts(raw: Any) -> float | None:
    return parse_utc(raw) if isinstance(raw, str) else None


def _at(data: str, name: str) -> str:
    return where.join(data, name)


def _last_tick(data: str, clock: Clock) -> LastTick | None:
    """When the world hash was last committed (the last successful decide)."""
    p = _at(data, ".last-tick-hash")
    try:
        st = os.stat(p)
    except OSError:
        return None
    return {**_stamp(clock, st.st_mtime), "hash": _text(p).strip()}


def _text(p: str | Path) -> str:
    """A small state file's text; '' when missing or not a file (status never fails on one)."""
    try:
        return store.read_text(p) or ""
    except OSError:
        return ""


def _tail(p: str, n: int, chunk: int = 65536) -> list[str]:
    try:
        return store.tail_lines(p, n, chunk)
    except OSError as e:
        return [f"({os.path.basename(p)} cannot be read: {e.strerror})"]


def _records(data: str) -> list[dict[str, Any]]:
    """The event records from the last beat's `tick_start` on, among the last
    EVENTS_SCAN_LINES lines (all of those when none starts a beat): _beat and _next_beat look
    no further back. Read from the end, a short tail first, so the lines before it are never
    decoded or parsed."""
    path = _at(data, "events.jsonl")
    out, started = _records_from_end(_tail(path, EVENTS_SHORT_TAIL, 8192))
    if not started:
        out, _ = _records_from_end(_tail(path, EVENTS_SCAN_LINES))
    return out


def _records_from_end(lines: list[str]) -> tuple[list[dict[str, Any]], bool]:
    out = []
    for line in reversed(lines):
        try:
            obj = ljson.loads(line)
        except ValueError:
            continue  # a torn or hand-edited line
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            out.append(obj)
            if obj["event"] == "tick_start":
                out.reverse()
                return out, True
    out.reverse()
    return out, False


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
        if not ends_beat(ev, outcome):
            continue
        outcome, ended = BEAT_ENDS[ev], _parse_ts(r.get("ts"))
        run_id = r.get("run_id") or run_id
        detail = beat_detail(r, clock)
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


def ends_beat(ev: str, outcome: str) -> bool:
    """Whether a record of event ev says how the beat ended, given the outcome its earlier
    records gave ("" for none): a crash after a failure is that failure unwinding, not news."""
    return ev in BEAT_ENDS and not (ev == "tick_crash" and outcome == "failed")


def beat_detail(r: dict[str, Any], clock: Clock) -> str:
    """The why of a beat-ending record, as status shows it ("" when it says none)."""
    ev = r.get("event")
    if ev == "decided":
        return move_line(str(r.get("action", "?")), str(r.get("journal") or ""))
    if ev == "world_unchanged":
        return "world unchanged — no AI call"
    if ev == "tick_backoff":
        return f"waiting out {r.get('fails', '?')} failure(s)"
    if ev == "provider_limited":
        until = r.get("until")
        when = local_text(clock, until) if isinstance(until, int | float) else "?"
        return f"provider usage limit — no AI call until {when}"
    if ev == "coalescing":
        return f"world changed — one decide in {r.get('secs', '?')}s, with what joins it"
    if ev in ("budget_exceeded", "budget_unmetered", "decide_capped"):
        return str(ev).replace("_", " ")
    return str(r.get("reason") or r.get("error") or "")


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


def _retry(backoff: dict[str, Any] | None, knobs: Knobs | None, clock: Clock) -> float | None:
    """When a backed-off beat may call the runner again (None when no backoff holds)."""
    if not backoff or knobs is None:
        return None
    fails, ts, mono = backoff.get("fails"), backoff.get("ts"), backoff.get("mono")
    if not isinstance(fails, int) or fails <= 0 or not isinstance(ts, int | float):
        return None
    # lazy: only a failing loop needs it
    from looop.loop.delays import backoff_delay, failed_at

    now = clock.now()
    mono = float(mono) if isinstance(mono, int | float) else None
    at = failed_at(float(ts), mono, now, clock.monotonic())
    # a stamp after a backward clock step: the next beat restarts the wait from now
    return (now if at is None else at) + backoff_delay(fails, knobs.num("backoff_max_secs"))


def _limited(data: str, clock: Clock) -> LimitedView | None:
    """The runner's provider usage limit still waited out (loop/limited), else None."""
    rec = _read_obj(_at(data, where.PROVIDER_LIMIT))
    if not rec:
        return None
    from looop.loop.limited import in_force  # lazy: only a data dir that hit a limit

    # a dropped schedule lifts the wait: the next changed world calls the runner again
    scheduled = os.path.isfile(_at(data, f"schedules/{where.LIMIT_SCHEDULE}.json"))
    if not in_force(rec, clock.now(), scheduled):
        return None
    until = rec["until"]
    runner, said = rec.get("runner"), rec.get("said")
    return {
        **_stamp(clock, until),
        "runner": runner if isinstance(runner, str) else None,
        "said": said if isinstance(said, str) else None,
    }


def _healing(data: str) -> dict[str, Any]:
    """The pulse session's restart record: how often its supervisor restarted it, why it
    last ended, and whether it is waiting to start it again right now."""
    sdir = where.join(_at(data, "sessions"), "pulse")
    st = read_status(sdir) or {}
    n = st.get("restarts")
    cause = st.get("last_cause")
    waiting = st.get("state") == "running" and st.get("child_pid") is None
    return {
        "restarts": n if isinstance(n, int) and not isinstance(n, bool) else 0,
        "last_cause": cause if isinstance(cause, str) else None,
        "restarting": waiting and st.get("restart_in_s") is not None and lock_held(sdir),
    }


def _read_obj(path: str) -> dict[str, Any] | None:
    try:
        return store.read_json_object(path)
    except CorruptState as e:
        return {"error": str(e)}


def _spend(
    data: str, config: str, clock: Clock, knobs: Knobs, runner: Runner | None
) -> SpendStatus | SpendError:
    from looop.decide.cost.glance import spend_glance  # lazy: hot path: `ls` shows no spend

    try:
        got = spend_glance(data, clock, knobs, runner)
        if got is not None:
            return got
        # lazy: the full breakers answer (and repair) what the glance does not
        from pathlib import Path

        from looop.core.paths import Paths
        from looop.decide.cost.breakers import spend_status

        return spend_status(Paths(Path(data), Path(config)), clock, knobs, runner)
    except CorruptState as e:
        return {"error": str(e)}


def _workers(data: str, all_workers: bool) -> tuple[list[WorkerView], int]:
    """The workers (the live ones alone unless `all_workers`: a finished session is then
    passed at one stat) and how many have finished."""
    try:
        sessions = list_light(data, not all_workers)
    except OSError as e:
        return [{"error": f"cannot list sessions: {e.strerror}"}], 0
    workers = [s for s in sessions if s["id"] != "pulse"]
    if all_workers:
        finished = sum(1 for s in workers if not s["alive"])
    else:  # every dir not listed as live
        finished = count_ids(data, skip="pulse") - len(workers)
    views: list[WorkerView] = [
        {
            "id": s["id"],
            "state": s["state"],
            "label": s["label"],
            "alive": s["alive"],
            "exit_code": s["exit_code"],
            "flagged": bool(s["note"]),
            "note": s["note"],
            "sandboxed": where.sandboxed(data, s["id"]),
        }
        for s in workers
    ]
    return views, max(0, finished)


def _from_snapshot(data: str, name: str) -> dict[str, Any] | None:
    """A system probe's last reading: what the pulse saw on its last beat, at no cost now."""
    return _read_obj(where.join(_at(data, "snapshots"), f"{name}.json"))


def _schedules(data: str) -> SchedulesView:
    snap = _from_snapshot(data, "sys-schedules") or {}
    raw = snap.get("signal")
    signal: dict[str, Any] = raw if isinstance(raw, dict) else {}
    names = sorted(signal)
    due = [n for n in names if signal[n] == "due"]
    invalid = [n for n in names if signal[n] == "invalid"]
    return {"names": names, "due": due, "invalid": invalid}


def _asks(data: str) -> list[str]:
    snap = _from_snapshot(data, "sys-asks") or {}
    sig = snap.get("signal")
    return [str(x) for x in sig] if isinstance(sig, list) else []


def _stem(name: str) -> str:
    """PurePath(name).stem."""
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def _goals(data: str) -> list[str]:
    """The goal files' names, as sorted(p.stem for p in goals.glob("*.md")) lists them."""
    d = _at(data, "goals")
    if not os.path.isdir(d):
        return []
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return sorted(_stem(n) for n in names if n.endswith(".md"))


def pulse_pid(paths: Paths) -> str:
    """The running pulse's pid as written in .lock/pid ('' when none)."""
    return _text(paths.pid_file).strip()


def tick_pid_file(paths: Paths) -> Path:
    """Where a foreground `looop tick` names itself while it holds the beat lock."""
    return paths.lock_dir / "tick.pid"


def beat_holder(paths: Paths) -> tuple[str, str] | None:
    """Who holds the beat lock: ("pulse", pid), ("tick", pid) or None (loop/fleet.py)."""
    return beat_holder_at(os.fspath(paths.data))


def gather_status(
    paths: Paths, env: Mapping[str, str], clock: Clock, all_workers: bool = True
) -> StatusView:
    return gather_status_at(os.fspath(paths.data), os.fspath(paths.config), env, clock, all_workers)


def gather_status_at(
    data: str, config: str, env: Mapping[str, str], clock: Clock, all_workers: bool = True
) -> StatusView:
    """`looop status` as data, from the data dir and config file as strings (Paths spells
    them the same: Paths.resolve is where.resolve wrapped). `all_workers=False`: the finished
    workers only counted (`workers_finished`), not read: they pile up over days."""
    holder = beat_holder_at(data)
    running = holder is not None and holder[0] == "pulse"
    pid = holder[1] if holder is not None and running else ""
    config_warnings: list[str] = []
    config_error, runner, knobs, interval, spend = _configured(
        data, config, env, clock, config_warnings
    )
    records = _records(data)
    workers, finished = _workers(data, all_workers)
    backoff = _read_obj(_at(data, ".tick-backoff"))
    fails = backoff.get("fails") if backoff else None
    streak = fails if isinstance(fails, int) and fails > 0 else 0
    retry = _retry(backoff, knobs, clock)
    healing = _healing(data)
    health = _health(holder is not None, running, streak, bool(healing["restarting"]))
    journal_tail = _tail(_at(data, "journal.md"), 3)
    return {
        "data_dir": data,
        "config": config,
        "config_error": config_error,
        "config_warnings": config_warnings,
        "runner": runner,
        "web": web_running(data),
        "now": _stamp(clock, clock.now()),
        "pulse": {
            "running": running,
            "pid": pid,
            "interval_s": interval,
            "restarts": healing["restarts"],
            "last_cause": healing["last_cause"],
            "restarting": healing["restarting"],
            "strays": _strays(data, env),
        },
        "pulse_alive": running,
        "health": health,
        "failing_streak": streak,
        "tick": {"pid": holder[1]} if holder is not None and not running else None,
        "last_beat": _beat(records, clock, holder is not None),
        "next_beat": _next_beat(records, clock, running),
        "retry": _stamp(clock, retry) if retry is not None else None,
        "limited": _limited(data, clock),
        "last_tick": _last_tick(data, clock),
        "backoff": backoff,
        "last_failure": _read_obj(_at(data, ".last-failure.json")),
        "goals": _goals(data),
        "journal_tail": journal_tail,
        "workers": workers,
        "workers_finished": finished,
        "spend": spend,
        "asks": _asks(data),
        "schedules": _schedules(data),
    }


def _configured(
    data: str, config: str, env: Mapping[str, str], clock: Clock, warnings: list[str]
) -> tuple[str | None, str | None, Knobs | None, int | None, SpendStatus | SpendError | None]:
    """What the config says (its error, the runner, the knobs, the idle interval, today's
    spend); a misspelt key is added to `warnings`: almost always a setting the user thinks
    is on, so status says so."""
    try:
        cfg = load_config(config)
        r = cfg.runner()
        knobs = resolve_knobs(cfg, env, warnings.append)
        interval = knobs.interval_for("idle")
        spend = _spend(data, config, clock, knobs, r)
    except LooopError as e:
        return str(e), None, None, None, None
    return None, r.name if r else None, knobs, interval, spend


def _health(held: bool, running: bool, streak: int, restarting: bool) -> str:
    if not held:
        return "restarting" if restarting else "stopped"
    if not running:
        return "tick"  # a foreground `looop tick` holds the beat, no pulse
    return "failing" if streak else "ok"


def web_running(data: str) -> str | None:
    """The URL (without its token) of the `looop web` serving this data dir, None when none
    does: its runtime record (web/auth.runtime_path) names a live `looop web` pid."""
    try:
        rec = store.read_json_object(where.join(_at(data, ".lock"), "web.json"))
    except (CorruptState, OSError):
        return None
    pid = rec.get("pid") if rec else None
    url = rec.get("url") if rec else None
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(url, str):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            alive = b"web" in f.read().split(b"\0")
    except OSError:
        return None
    return url + "/" if alive else None


def config_trouble(st: StatusView) -> bool:
    """Whether status exits 1: the config cannot be used, or holds a key looop does not read."""
    return bool(st.get("config_error") or st.get("config_warnings"))


PAUSE_SCAN_LINES = 2000  # events.jsonl lines read back for the pulse's last stop or start


def paused_at(events: str) -> bool:
    """Whether the pulse's last stop was a pause (`down --keep-workers`, the page's or watch's
    Pause) with no start since: the faces say "paused", not "stopped"."""
    for line in reversed(store.tail_lines(events, PAUSE_SCAN_LINES)):
        if '"down"' not in line and '"pulse_start"' not in line:
            continue  # most lines are neither: not parsed
        try:
            r = ljson.loads(line)
        except ValueError:
            continue
        ev = r.get("event") if isinstance(r, dict) else None
        if ev == "pulse_start":
            return False
        if ev == "down":
            return "kept" in r
    return False


def _strays(data: str, env: Mapping[str, str]) -> list[str]:
    """Pulses of this home still running on a data dir removed or replaced under them (the
    runtime dir's registry: no lock in the data dir shows them)."""
    try:
        return [str(r["pid"]) for r in homes.strays(runtime_base(env), data)]
    except (LooopError, OSError):
        return []


V1_JOURNAL_LINES = 20  # v1.0's `state --json` journal_tail length


def add_v1_fields(st: StatusView) -> StatusView:
    """The fields v1.0's `looop state --json` has, with v1.0's meaning, on top of ours: the
    live world hash, every snapshot's parsed reading, the pending ask records and the last 20
    journal lines. Only `--json` pays for these reads (plain status stays as light as it was)."""
    from looop.core import jsonsafe  # lazy: plain status parses no readings
    from looop.loop.worldhash import world_hash_at  # lazy: plain status hashes nothing

    data = st["data_dir"]
    snaps: dict[str, Any] = {}
    for name, path in _json_files(_at(data, "snapshots")):
        try:
            snaps[_stem(name)] = jsonsafe.loads(store.read_text(path) or "")
        except (OSError, ValueError):
            continue  # unreadable or not JSON (or NaN, which JSON cannot carry): left out
    asks = pending_asks(data)
    return {
        **st,
        "world_hash": world_hash_at(data),
        "snapshots": snaps,
        "asks": asks,
        "ask_ids": [str(a.get("id")) for a in asks],
        "journal_tail": _tail(_at(data, "journal.md"), V1_JOURNAL_LINES),
    }


def _json_files(d: str) -> list[tuple[str, str]]:
    """(name, path) of the regular `*.json` files in `d`, sorted by name."""
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    except OSError:
        return []
    return [(n, where.join(d, n)) for n in names if os.path.isfile(where.join(d, n))]


def pending_asks(data: str) -> list[dict[str, Any]]:
    """human.mailbox.pending over plain strings (the fast path loads no pathlib): the ask
    records with no answer yet, by file name."""
    asks, answers = _at(data, "asks"), _at(data, "answers")
    out: list[dict[str, Any]] = []
    for name, path in _json_files(asks):
        if os.path.exists(where.join(answers, name)):
            continue
        try:
            rec = store.read_json_object(path)
        except CorruptState:
            rec = {"id": _stem(name), "worker": "?", "prompt": "(unreadable ask record)"}
        if rec:
            out.append(rec)
    return out


def status_json(st: StatusView) -> str:
    return ljson.dumps(st, indent=2, sort_keys=True, ensure_ascii=False)
