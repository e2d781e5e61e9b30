"""What the gate saved: each beat that skips the model (the world unchanged) is counted with
what a decide would have cost — the median of this home's last decides' costs — next to the
decides made. `<data>/.savings.json` keeps per local day {decides, skipped, saved micro-USD}
(the last days only) and the trailing decide costs; `savings_view` is the one reckoning every
face shows (status, `looop cost`, the web page, /metrics). In the hot room: status reads it on
its fast path (no typing, no datetime)."""

from __future__ import annotations

import os
import time

from looop.home import jsonio, store
from looop.home.cost.money import sane_usd

TYPE_CHECKING = False  # status reads this on its fast path: no typing

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

FILE = ".savings.json"
VERSION = 1
TRAIL = 20  # decides whose median prices a skipped beat
KEEP_DAYS = 8  # a week, and the day it began on
WEEK_DAYS = 7


def _path(data: str) -> str:
    return os.path.join(data, FILE)


def _day(clock: Clock, ts: float) -> str:
    return time.strftime("%Y-%m-%d", clock.local_tm(ts))


def _read(data: str) -> dict[str, Any]:
    """The tally as kept; unreadable or foreign: a fresh one (a count lost, never a crash)."""
    try:
        obj = jsonio.loads(store.read_regular(_path(data), 65536).decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        return {"v": VERSION, "costs": [], "days": {}}
    costs = obj.get("costs")
    days = obj.get("days")
    obj["costs"] = [c for c in costs if _count(c)][-TRAIL:] if isinstance(costs, list) else []
    obj["days"] = (
        {k: v for k, v in days.items() if isinstance(v, dict)} if isinstance(days, dict) else {}
    )
    return obj


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def median_micros(costs: list[int]) -> int:
    """The trailing decides' median cost (0 with none yet: a skip saves nothing known)."""
    if not costs:
        return 0
    s = sorted(costs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


def _bump(data: str, clock: Clock, field: str, cost: int | None) -> None:
    """Add one to today's `field`; a skip adds the trailing median to `saved`, a decide
    with a known `cost` joins the trail."""
    obj = _read(data)
    today = _day(clock, clock.now())
    day = obj["days"].setdefault(today, {})
    day[field] = (day.get(field) if _count(day.get(field)) else 0) + 1
    if field == "skipped":
        saved = day.get("saved") if _count(day.get("saved")) else 0
        day["saved"] = saved + median_micros(obj["costs"])
    elif cost is not None and cost > 0:
        obj["costs"] = [*obj["costs"], cost][-TRAIL:]
    keep = sorted(obj["days"])[-KEEP_DAYS:]
    obj["days"] = {k: obj["days"][k] for k in keep}
    try:
        store.write_json(_path(data), obj, durable=False)
    except OSError:
        pass  # a full disk loses a count, never a beat


def note_skip(data: str, clock: Clock) -> None:
    """A beat that skipped the model: counted, with what the trailing decides say it saved."""
    _bump(data, clock, "skipped", None)


def note_decide(data: str, clock: Clock, usd: float | None) -> None:
    """A decide made; its cost (None: the runner said none) joins the trailing median."""
    sane = sane_usd(usd)  # a runner's word: NaN, inf or a fortune is no sample
    cost = round(sane * 1_000_000) if sane is not None and sane > 0 else None
    _bump(data, clock, "decides", cost)


def savings_view(data: str, clock: Clock) -> dict[str, Any]:
    """Decides made, beats skipped and dollars saved, today and over the last 7 local days,
    and the median decide cost a skip is priced at: what every face shows."""
    obj = _read(data)
    now = clock.now()
    today = _day(clock, now)
    week = {_day(clock, now - k * 86400) for k in range(WEEK_DAYS)} | {today}
    out: dict[str, Any] = {"median_decide_usd": median_micros(obj["costs"]) / 1_000_000}
    for name, days in (("today", {today}), ("week", week)):
        got = [obj["days"][d] for d in days if d in obj["days"]]
        out[name] = {
            "decides": sum(int(g.get("decides", 0)) for g in got if _count(g.get("decides"))),
            "skipped": sum(int(g.get("skipped", 0)) for g in got if _count(g.get("skipped"))),
            "saved_usd": sum(int(g["saved"]) for g in got if _count(g.get("saved"))) / 1_000_000,
        }
    return out


def savings_line(view: dict[str, Any]) -> str:
    """What the gate saved, in one line, as status and `looop cost` print it."""
    t, w = view["today"], view["week"]
    return (
        f"${t['saved_usd']:.4f} today ({t['skipped']} beats skipped, "
        f"{t['decides']} decides); ${w['saved_usd']:.4f} this week ({w['skipped']} skipped, "
        f"{w['decides']} decides) — a skip priced at the median decide "
        f"${view['median_decide_usd']:.4f}"
    )
