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

The wall clock can step (NTP, a human, a VM resumed). A forward step fires each due schedule
once. A backward one must not fire anything twice nor stall: `.schedule-marks.json` keeps,
per schedule, what it has fired — the one-shot's due, the every's period with its place on
the monotonic clock, the cron's slot — and only the beat's probe writes it. An `every` runs
on the monotonic clock past a step back; a cron slot at or before the last fired one never
fires again; a one-shot once due stays due.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from cronsim import CronSim, CronSimError

from looop.home import store
from looop.home.clock import Clock, offset_stamp
from looop.home.errors import CorruptState, LooopError
from looop.home.localtime import load_zone, zone_name

MIN_EVERY_S = 60
# ten years: a one-shot or a period past it saturates here instead of being refused (v1.0
# clamps to the end of time); the wait stays short of any overflow
FAR_S = 10 * 366 * 86400
# the last instant a date can be printed in any zone (year 9999, less a day for the offset)
_LAST_STAMP = 253402214400.0
# a wall clock behind the monotonic clock by more than this since the last mark stepped back
# (less: drift, or a test's frozen wall clock while real time runs)
STEP_S = 10.0
VERSION = 1
_NOTE_MAX = 2000
_WALK_MAX = 10_000  # bounds the forward walk after a reverse search


class ScheduleError(LooopError):
    """A schedule that cannot be written as asked; one line saying what to change."""


@dataclass(frozen=True)
class ScheduleReading:
    """One schedule's part of the sys-schedules reading (core/readings' Reading is the whole)."""

    name: str
    kind: str  # one-shot | recurring | cron | invalid
    signal: Any
    detail: dict[str, Any]
    next_due: float | None  # unix seconds of the next change of signal, if any
    mark: dict[str, Any] | None = None  # what it has fired, to keep in .schedule-marks.json


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
    """A time as the reader's stamp; a hand-written one past year 9999 shows as then."""
    return offset_stamp(datetime.fromtimestamp(max(0.0, min(ts, _LAST_STAMP)), tz=zone))


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
        rec["at"] = now + min(in_s, FAR_S)
    elif every_s is not None:
        if every_s < MIN_EVERY_S:
            raise ScheduleError(
                f"every_s must be >= {MIN_EVERY_S}; for a sooner follow-up use next_interval_s"
            )
        rec.update(every_s=min(every_s, FAR_S), anchor=now)
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
        if not fname.endswith(".json") or fname.startswith(".") or not (folder / fname).is_file():
            continue
        try:
            rec = store.read_json_object(folder / fname)
        except CorruptState:
            out.append((fname[:-5], None, "not a JSON object"))
            continue
        if rec is not None:  # else removed between listing and reading
            out.append((fname[:-5], rec, ""))
    return out


def _int(rec: dict[str, Any], key: str) -> int | None:
    v = _num(rec, key)
    return None if v is None else int(v)


def _invalid(name: str, why: str, note: str) -> ScheduleReading:
    # A stable signal: a broken file wakes the loop once (so it gets fixed), then stays quiet.
    return ScheduleReading(
        name, "invalid", "invalid", {"kind": "invalid", "error": why, "note": note}, None
    )


def _num(m: dict[str, Any], key: str) -> float | None:
    v = m.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _every_mark(
    m: dict[str, Any] | None, every: int, anchor: int, now: float, mono_now: float
) -> tuple[int, float, dict[str, Any]]:
    """(period, shift, mark) of an `every` schedule: its time is the wall clock plus a shift
    that grows by each backward step, measured on the monotonic clock; its period never goes
    back."""
    if m is None or m.get("every_s") != every or m.get("anchor") != anchor:
        m = None  # no mark, or one of a rewritten schedule
    shift = (_num(m, "shift") or 0.0) if m else 0.0
    fired = _int(m, "period") if m else None
    eff = now + shift
    if m is not None:
        at, mono = _num(m, "eff"), _num(m, "mono")
        if at is not None and mono is not None and mono_now >= mono:
            expected = at + (mono_now - mono)  # where the schedule's time is by now
            if eff < expected - STEP_S:  # the wall clock stepped back since the mark
                eff = expected
    period = max(0, int(eff - anchor) // every)
    if fired is not None and period < fired:  # stepped back, no monotonic reading (a reboot)
        period, eff = fired, float(anchor + fired * every)
    new_shift = eff - now
    if m is not None and period == fired and abs(new_shift - shift) < 1:
        return period, shift, m  # nothing new: the mark stays as it is (no write)
    mark = {
        "every_s": every,
        "anchor": anchor,
        "period": period,
        "shift": round(new_shift, 3),
        "eff": round(eff, 3),
        "mono": round(mono_now, 3),
    }
    return period, new_shift, mark


def reading(
    name: str,
    rec: dict[str, Any] | None,
    why: str,
    clock: Clock,
    mark: dict[str, Any] | None = None,
) -> ScheduleReading:
    """The signal (what wakes the loop) and detail (what the decider reads) of one schedule.
    mark: what it fired before (.schedule-marks.json), so a backward clock step never fires
    it again; the ScheduleReading's own mark is the one to keep.

    Detail holds absolute times only: an age or countdown would change every beat and break
    the byte-identical prompt prefix that provider prompt caching relies on."""
    if rec is None:
        return _invalid(name, f"schedules/{name}.json is {why}; rewrite or drop it", "")
    note = str(rec.get("note") or "")
    shapes = [k for k in ("at", "every_s", "cron") if k in rec]
    if len(shapes) != 1:
        return _invalid(name, "needs exactly one of at, every_s or cron", note)
    if "at" in rec:
        return _one_shot(name, rec, note, clock, mark)
    if "every_s" in rec:
        return _recurring(name, rec, note, clock, mark)
    return _cron(name, rec, note, clock, mark)


def _one_shot(
    name: str, rec: dict[str, Any], note: str, clock: Clock, mark: dict[str, Any] | None
) -> ScheduleReading:
    """An `at` schedule: pending until its time, then due (and kept due by its mark)."""
    at = _int(rec, "at")
    if at is None:
        return _invalid(name, "field 'at' must be unix seconds", note)
    due = clock.now() >= at or (
        mark is not None and mark.get("at") == at and mark.get("due") is True
    )
    shot: dict[str, Any] = {"kind": "one-shot", "due_at": _stamp(at, clock.zone()), "note": note}
    kept: dict[str, Any] | None = {"at": at, "due": True} if due else None
    sig = "due" if due else "pending"
    return ScheduleReading(name, "one-shot", sig, shot, None if due else at, kept)


def _recurring(
    name: str, rec: dict[str, Any], note: str, clock: Clock, mark: dict[str, Any] | None
) -> ScheduleReading:
    """An `every_s` schedule: its signal is the period it is in, counted from its anchor (a
    hand-written record without one is due at once, then runs normally)."""
    anchor = _int(rec, "anchor") or 0
    every = _int(rec, "every_s")
    if every is None or every < MIN_EVERY_S:
        # a hand-written record is held to the same floor as write_schedule: a 5 s
        # schedule would wake (and spend a decide) every 5 s
        return _invalid(
            name,
            f"field 'every_s' must be at least {MIN_EVERY_S} seconds (a whole number)",
            note,
        )
    period, shift, kept = _every_mark(mark, every, anchor, clock.now(), clock.monotonic())
    nxt = anchor + (period + 1) * every - shift  # on the wall clock
    rep: dict[str, Any] = {
        "kind": "recurring",
        "every_s": every,
        "next_due": _stamp(nxt, clock.zone()),
        "note": note,
    }
    return ScheduleReading(name, "recurring", {"period": period}, rep, float(nxt), kept)


def _cron(
    name: str, rec: dict[str, Any], note: str, clock: Clock, mark: dict[str, Any] | None
) -> ScheduleReading:
    """A `cron` schedule: its signal is the last slot it fired, after its anchor."""
    anchor, now = _int(rec, "anchor") or 0, clock.now()
    expr = rec.get("cron")
    if not isinstance(expr, str):
        return _invalid(name, "field 'cron' must be a string", note)
    try:
        czone = _zone_of(rec, clock)
        ident: dict[str, Any] = {"cron": expr, "tz": rec.get("tz"), "anchor": anchor}
        m = mark if mark is not None and all(mark.get(k) == v for k, v in ident.items()) else None
        slot = _num(m, "slot") if m else None
        last = _last_fire(expr, czone, now)
        if slot is not None and (last is None or last < slot):
            last = slot  # the clock stepped back: a slot at or before the last fired one waits
        nxt_fire = _next_fire(expr, czone, now if slot is None else max(now, slot))
    except ValueError as e:
        return _invalid(name, str(e), note)
    fired = last is not None and last > anchor
    kept = {**ident, "slot": last} if fired else None
    detail: dict[str, Any] = {
        "kind": "cron",
        "cron": expr,
        "tz": rec.get("tz") or zone_name(czone) or "local",
        "last_due": _stamp(last, czone) if fired and last is not None else None,
        "next_due": _stamp(nxt_fire, czone) if nxt_fire is not None else None,
        "note": note,
    }
    signal: Any = {"fired": _stamp(last, czone)} if fired and last is not None else "pending"
    return ScheduleReading(name, "cron", signal, detail, nxt_fire, kept)


def load_marks(path: Path | None) -> dict[str, dict[str, Any]]:
    """.schedule-marks.json's marks by schedule name; {} when missing or unreadable (a lost
    mark costs at most one firing again, never a stall)."""
    if path is None:
        return {}
    try:
        obj = store.read_json_object(path)
    except CorruptState:
        return {}
    marks = obj.get("marks") if obj else None
    if not isinstance(marks, dict):
        return {}
    return {str(k): v for k, v in marks.items() if isinstance(v, dict)}


def readings(
    folder: Path, clock: Clock, marks: Path | None = None, kept: dict[str, Any] | None = None
) -> list[ScheduleReading]:
    """Every schedule's reading; `marks`: .schedule-marks.json, read (never written) here
    (`kept`: its marks, read already)."""
    kept = load_marks(marks) if kept is None else kept
    return [reading(n, rec, why, clock, kept.get(n)) for n, rec, why in load_all(folder)]


def next_due(folder: Path, clock: Clock, marks: Path | None = None) -> tuple[float, str] | None:
    """The soonest future moment a schedule's signal changes, and its name (the pulse never
    sleeps past it)."""
    now = clock.now()
    due = [(r.next_due, r.name) for r in readings(folder, clock, marks) if r.next_due is not None]
    return min((d for d in due if d[0] > now), default=None)


def probe(folder: Path, clock: Clock, marks: Path | None = None) -> dict[str, Any]:
    """The sys-schedules snapshot: one signal and one detail entry per schedule. The beat's
    probe passes `marks` and keeps what fired there (written only when it changed)."""
    rows = readings(folder, clock, kept=(before := load_marks(marks)))
    if marks is not None:
        after = {r.name: r.mark for r in rows if r.mark is not None}
        if after != before:
            store.write_json(marks, {"v": VERSION, "marks": after})
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
