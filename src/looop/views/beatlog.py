"""The beats as events.jsonl tells them, in status's words: how the last beat ended and why,
when the pulse said it would beat next, whether its last stop was a pause; and the one time
format status shows them in. `looop status`, the web page and the watch screen read them here.
Light: `looop status` imports this on its click-free fast path (no typing, no pathlib)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.stamps import parse_utc
from looop.home.where import EVENTS

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock
    from looop.views.shapes import BeatView, NextBeat, Stamp


def move_line(kind: str, journal: str) -> str:
    """`kind · journal`, without saying the kind twice when the journal line is the summary
    (`noop · settled`, `run-shell · make test`)."""
    first = journal.split(" ", 1)[0]
    return journal if kind and kind in first else f"{kind} · {journal}".rstrip(" ·")


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # the one time format of status (local time)
EVENTS_SCAN_LINES = 400  # enough for a beat's records even with busy workers around it
EVENTS_SHORT_TAIL = 40  # where a quiet beat's records are: read first (a beat writes ~5)

# events.jsonl records that say how a beat ended -> the outcome shown (the web's beats too)
BEAT_ENDS = {
    "decided": "decided", "world_unchanged": "skipped", "tick_backoff": "backoff",
    "coalescing": "coalescing", "provider_limited": "limited", "tick_failed": "failed",
    "decide_abandoned": "abandoned", "tick_crash": "failed", "tick_error": "error",
    "tick_unrecorded": "error", "guard_corrupt": "error", "budget_exceeded": "breaker",
    "budget_unmetered": "breaker", "decide_capped": "breaker",
}  # fmt: skip


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


def stamp(clock: Clock, ts: float | None) -> Stamp:
    """A time as JSON fields: unix seconds and the local form status prints."""
    if ts is None:
        return {"ts": None, "at": None}
    return {"ts": int(ts), "at": local_text(clock, ts)}


def _parse_ts(raw: Any) -> float | None:
    return parse_utc(raw) if isinstance(raw, str) else None


def tail(p: str, n: int, chunk: int = 65536) -> list[str]:
    """A file's last n lines; one line saying why when it cannot be read (status never fails
    on one)."""
    try:
        return store.tail_lines(p, n, chunk, follow=False)  # a box can write events.jsonl
    except OSError as e:
        return [f"({os.path.basename(p)} cannot be read: {e.strerror})"]


def beat_records(data: str) -> list[dict[str, Any]]:
    """The event records from the last beat's `tick_start` on, among the last
    EVENTS_SCAN_LINES lines (all of those when none starts a beat): last_beat and next_beat
    look no further back. Read from the end, a short tail first, so the lines before it are
    never decoded or parsed."""
    path = where.join(data, EVENTS)
    out, started = _records_from_end(tail(path, EVENTS_SHORT_TAIL, 8192))
    if not started:
        out, _ = _records_from_end(tail(path, EVENTS_SCAN_LINES))
    return out


def _records_from_end(lines: list[str]) -> tuple[list[dict[str, Any]], bool]:
    out = []
    for line in reversed(lines):
        try:
            obj = jsonio.loads(line)
        except ValueError:
            continue  # a torn or hand-edited line
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            out.append(obj)
            if obj["event"] == "tick_start":
                out.reverse()
                return out, True
    out.reverse()
    return out, False


def last_beat(records: list[dict[str, Any]], clock: Clock, holding: bool) -> BeatView | None:
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
        **stamp(clock, started),
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


def next_beat(records: list[dict[str, Any]], clock: Clock, running: bool) -> NextBeat | None:
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
            ts = _on_the_monotonic_clock(r, clock, ts)
            return {**stamp(clock, ts), "reason": str(r.get("reason") or "")}
    return None


def _on_the_monotonic_clock(r: dict[str, Any], clock: Clock, until: float) -> float:
    """The next beat on today's wall clock: the pulse sleeps on the monotonic clock, so after
    a wall clock step its `until` is off by the step and `until_mono` (where it wakes on the
    monotonic clock) tells the truth. A mark from another boot (further off than the sleep
    itself) is not trusted: the wall clock's `until` stands."""
    mono, secs = r.get("until_mono"), r.get("secs")
    if not isinstance(mono, int | float) or not isinstance(secs, int | float):
        return until
    left = float(mono) - clock.monotonic()
    if left > float(secs) + 1:
        return until
    return clock.now() + left


PAUSE_SCAN_LINES = 2000  # events.jsonl lines read back for the pulse's last stop or start


def paused_at(events: str) -> bool:
    """Whether the pulse's last stop was a pause (`down --keep-workers`, the page's or watch's
    Pause) with no start since: the faces say "paused", not "stopped". Found by its bytes from
    the end: only a line naming either event is decoded and parsed (a status cold start paid
    ~0.7 ms decoding a busy log's every line)."""
    try:
        raw = store.tail_raw(events, PAUSE_SCAN_LINES, follow=False)
    except OSError:
        return False  # unreadable (or not a file): no pause said
    end = len(raw)
    while end > 0:
        at = max(raw.rfind(b'"down"', 0, end), raw.rfind(b'"pulse_start"', 0, end))
        if at < 0:
            return False
        start = raw.rfind(b"\n", 0, at) + 1
        stop = raw.find(b"\n", at)
        line = raw[start : stop if stop >= 0 else len(raw)]
        end = start
        if len(line) > store.LINE_MAX:
            continue  # as tail_lines skips it
        try:
            r = jsonio.loads(line.decode("utf-8", "replace"))
        except ValueError:
            continue
        ev = r.get("event") if isinstance(r, dict) else None
        if ev == "pulse_start":
            return False
        if ev == "down":
            return "kept" in r
    return False
