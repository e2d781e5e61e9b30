"""Durable time: schedules/<name>.json, read level-triggered through the sys-schedules probe.

The world hash leaves the clock out (so an unchanged world costs no AI), which means "wake me
at/every T" must itself be part of the world. A schedule is a plain file; its signal changes
exactly when it falls due, so it wakes the loop once per period like any other change, and a
pulse that restarts re-derives due-ness from the file and the clock. Periods missed while no
pulse ran collapse into one change: one wake, not one per missed period.

Three shapes:
  one-shot   {"at": unix}                         signal "pending" -> "due" (stays due until
                                                  dropped: one wake, never a spammer)
  recurring  {"every_s": N, "anchor": unix}       signal {"period": floor((now-anchor)/N)}
  cron       {"cron": EXPR, "tz": ZONE, "anchor"}  signal {"fired": the latest fire time after
                                                  anchor} or "pending"; DST as Debian cron
                                                  (cronsim): a skipped time runs once after
                                                  the jump, a repeated hour fires once
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from cronsim import CronSim, CronSimError

from looop.core import store
from looop.core.clock import Clock, load_zone, offset_stamp, zone_name
from looop.core.errors import CorruptState, LooopError

MIN_EVERY_S = 60
VERSION = 1
_NOTE_MAX = 2000
_WALK_MAX = 10_000  # bounds the forward walk after a reverse search


class ScheduleError(LooopError):
    """A schedule that cannot be written as asked; one line saying what to change."""


@dataclass(frozen=True)
class Reading:
    name: str
    kind: str  # one-shot | recurring | cron | invalid
    signal: Any
    detail: dict[str, Any]
    next_due: float | None  # unix seconds of the next change of signal, if any


def _cron_sim(expr: str, start: datetime, reverse: bool = False) -> Any:
    try:
        return CronSim(expr, start, reverse=reverse)
    except CronSimError as e:
        raise ValueError(f"bad cron expression '{expr}': {e}") from None


def _zone_of(rec: dict[str, Any], clock: Clock) -> tzinfo:
    tz = rec.get("tz")
    if tz is None:
        return clock.zone()
    if not isinstance(tz, str):
        raise ValueError("field 'tz' must be a zone name")
    return load_zone(tz)


def _next_fire(expr: str, zone: tzinfo, after: float) -> float | None:
    """The first fire time strictly after `after` (cron has minute resolution)."""
    start = datetime.fromtimestamp(math.floor(after), tz=zone)
    try:
        return float(next(_cron_sim(expr, start)).timestamp())
    except StopIteration:
        return None


def _last_fire(expr: str, zone: tzinfo, upto: float) -> float | None:
    """The latest fire time at or before `upto` (cronsim's reverse start is exclusive).

    Reverse search from inside a repeated (fall-back) hour can land a day early, so the
    answer is walked forward with the forward search, which handles folds as Debian does;
    otherwise the signal would step backwards and wake the loop twice."""
    start = datetime.fromtimestamp(math.floor(upto) + 1, tz=zone)
    try:
        last = next(_cron_sim(expr, start, reverse=True))
    except StopIteration:
        return None
    forward = _cron_sim(expr, last)
    for _ in range(_WALK_MAX):
        try:
            nxt = next(forward)
        except StopIteration:
            break
        if nxt.timestamp() > upto:
            break
        last = nxt
    return float(last.timestamp())


def _stamp(ts: float, zone: tzinfo) -> str:
    return offset_stamp(datetime.fromtimestamp(ts, tz=zone))


def build(
    clock: Clock,
    *,
    in_s: int | None = None,
    every_s: int | None = None,
    cron: str | None = None,
    tz: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A validated record (ScheduleError names the field to fix); time zero is now."""
    given = [n for n, v in (("in_s", in_s), ("every_s", every_s), ("cron", cron)) if v is not None]
    if len(given) != 1:
        raise ScheduleError(
            "give exactly one of in_s (once), every_s (repeat) or cron "
            f"(got {', '.join(given) or 'none'})"
        )
    if tz is not None and cron is None:
        raise ScheduleError("tz applies only to cron schedules; drop it or use cron")
    now = int(clock.now())
    rec: dict[str, Any] = {"v": VERSION, "written": now}
    if in_s is not None:
        if in_s < 1:
            raise ScheduleError("in_s must be at least 1 second")
        rec["at"] = now + in_s
    elif every_s is not None:
        if every_s < MIN_EVERY_S:
            raise ScheduleError(
                f"every_s must be >= {MIN_EVERY_S}; for a sooner follow-up use next_interval_s"
            )
        rec.update(every_s=every_s, anchor=now)
    else:
        assert cron is not None
        expr = " ".join(cron.split())
        if not expr:
            raise ScheduleError("cron is empty; give five fields, e.g. '0 9 * * MON-FRI'")
        try:
            zone = load_zone(tz) if tz is not None else clock.zone()
            first = _next_fire(expr, zone, now)
        except ValueError as e:
            raise ScheduleError(str(e)) from None
        if first is None:
            raise ScheduleError(f"cron '{expr}' never fires; check the day and month fields")
        rec.update(cron=expr, tz=zone_name(zone) if tz is None else tz.strip(), anchor=now)
    if note:
        rec["note"] = note[:_NOTE_MAX]
    return rec


def describe(rec: dict[str, Any], clock: Clock) -> str:
    """`once at 2026-06-21 10:00 +09:00` / `every 3600s` / `cron '0 9 * * *' Europe/Berlin`."""
    if "at" in rec:
        return f"once at {_stamp(float(rec['at']), clock.zone())}"
    if "every_s" in rec:
        return f"every {rec['every_s']}s"
    return f"cron '{rec.get('cron')}' {rec.get('tz') or 'local time'}"


def path_of(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


def write(folder: Path, name: str, rec: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    store.write_json(path_of(folder, name), rec)


def drop(folder: Path, name: str) -> bool:
    """Remove a schedule; False when there was none (idempotent)."""
    return store.remove(path_of(folder, name))


def load_all(folder: Path) -> list[tuple[str, dict[str, Any] | None, str]]:
    """(name, record or None, why unreadable) for every schedule file, sorted by name."""
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out: list[tuple[str, dict[str, Any] | None, str]] = []
    for fname in names:
        if not fname.endswith(".json") or fname.startswith("."):
            continue
        path = folder / fname
        if not path.is_file():
            continue
        try:
            rec = store.read_json_object(path)
        except CorruptState:
            out.append((fname[:-5], None, "not a JSON object"))
            continue
        if rec is None:
            continue  # removed between listing and reading
        out.append((fname[:-5], rec, ""))
    return out


def _int(rec: dict[str, Any], key: str) -> int | None:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return int(v)


def _invalid(name: str, why: str, note: str) -> Reading:
    # A stable signal: a broken file wakes the loop once (so it gets fixed), then stays quiet.
    return Reading(
        name, "invalid", "invalid", {"kind": "invalid", "error": why, "note": note}, None
    )


def reading(name: str, rec: dict[str, Any] | None, why: str, clock: Clock) -> Reading:
    """The signal (what wakes the loop) and detail (what the decider reads) of one schedule.

    Detail holds absolute times only: an age or countdown would change every beat and break
    the byte-identical prompt prefix that provider prompt caching relies on."""
    if rec is None:
        return _invalid(name, f"schedules/{name}.json is {why}; rewrite or drop it", "")
    note = str(rec.get("note") or "")
    shapes = [k for k in ("at", "every_s", "cron") if k in rec]
    if len(shapes) != 1:
        return _invalid(name, "needs exactly one of at, every_s or cron", note)
    now = clock.now()
    zone = clock.zone()
    if "at" in rec:
        at = _int(rec, "at")
        if at is None:
            return _invalid(name, "field 'at' must be unix seconds", note)
        due = now >= at
        shot: dict[str, Any] = {"kind": "one-shot", "due_at": _stamp(at, zone), "note": note}
        return Reading(name, "one-shot", "due" if due else "pending", shot, None if due else at)
    anchor = _int(rec, "anchor")
    if anchor is None:
        anchor = 0  # a hand-written record without one is due at once, then runs normally
    if "every_s" in rec:
        every = _int(rec, "every_s")
        if every is None or every < 1:
            return _invalid(name, "field 'every_s' must be a positive number of seconds", note)
        period = max(0, int(now - anchor) // every)
        nxt = anchor + (period + 1) * every
        rep: dict[str, Any] = {
            "kind": "recurring",
            "every_s": every,
            "next_due": _stamp(nxt, zone),
            "note": note,
        }
        return Reading(name, "recurring", {"period": period}, rep, float(nxt))
    expr = rec.get("cron")
    if not isinstance(expr, str):
        return _invalid(name, "field 'cron' must be a string", note)
    try:
        czone = _zone_of(rec, clock)
        last = _last_fire(expr, czone, now)
        nxt_fire = _next_fire(expr, czone, now)
    except ValueError as e:
        return _invalid(name, str(e), note)
    fired = last is not None and last > anchor
    detail: dict[str, Any] = {
        "kind": "cron",
        "cron": expr,
        "tz": rec.get("tz") or zone_name(czone) or "local",
        "last_due": _stamp(last, czone) if fired and last is not None else None,
        "next_due": _stamp(nxt_fire, czone) if nxt_fire is not None else None,
        "note": note,
    }
    signal: Any = {"fired": _stamp(last, czone)} if fired and last is not None else "pending"
    return Reading(name, "cron", signal, detail, nxt_fire)


def readings(folder: Path, clock: Clock) -> list[Reading]:
    return [reading(n, rec, why, clock) for n, rec, why in load_all(folder)]


def next_due(folder: Path, clock: Clock) -> tuple[float, str] | None:
    """The soonest future moment a schedule's signal changes, and its name (the pulse never
    sleeps past it)."""
    best: tuple[float, str] | None = None
    now = clock.now()
    for r in readings(folder, clock):
        if r.next_due is not None and r.next_due > now and (best is None or r.next_due < best[0]):
            best = (r.next_due, r.name)
    return best


def probe(folder: Path, clock: Clock) -> dict[str, Any]:
    """The sys-schedules snapshot: one signal and one detail entry per schedule."""
    rows = readings(folder, clock)
    return {
        "detail": {r.name: r.detail for r in rows},
        "signal": {r.name: r.signal for r in rows},
    }


def first_fires(rec: dict[str, Any], clock: Clock, n: int = 3) -> list[float]:
    """The next n times a record fires (for `schedule write` feedback and `list`)."""
    now = clock.now()
    if "at" in rec:
        at = _int(rec, "at")
        return [float(at)] if at is not None and at > now else []
    if "every_s" in rec:
        every, anchor = _int(rec, "every_s"), _int(rec, "anchor") or 0
        if not every or every < 1:
            return []
        k = max(0, int(now - anchor) // every) + 1
        return [float(anchor + (k + i) * every) for i in range(n)]
    expr = rec.get("cron")
    if not isinstance(expr, str):
        return []
    try:
        zone = _zone_of(rec, clock)
        it = _cron_sim(expr, datetime.fromtimestamp(math.floor(now), tz=zone))
        return [float(next(it).timestamp()) for _ in range(n)]
    except (ValueError, StopIteration):
        return []


def fire_stamp(rec: dict[str, Any], clock: Clock, ts: float) -> str:
    """A fire time in the schedule's own zone (the local zone for once/every)."""
    try:
        zone = _zone_of(rec, clock)
    except ValueError:
        zone = clock.zone()
    return _stamp(ts, zone)


def in_words(secs: float) -> str:
    """12s / 5m / 3h 20m / 2d 4h, rounded: for humans only (never in the prompt)."""
    s = max(0, round(secs))
    if s < 60:
        return f"{s}s"
    mins = round(s / 60)
    if mins < 60:
        return f"{mins}m"
    if s < 86400:
        h, m = divmod(mins, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(round(s / 3600), 24)
    return f"{d}d {h}h" if h else f"{d}d"
