"""The spend block (spend_status), the one daily budget (daily_budget) and today's spend
toward it (spent_today): what status, doctor and every gate read, so they agree."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, stamps
from looop.home.errors import CorruptState
from looop.home.where import COST_LEDGER
from looop.spend import COST_REPORTING, SAID, cap, finite, rotate, sane_usd, totals, usd
from looop.spend.cap import UNMETERED_LIMIT
from looop.spend.prices import command_word

if TYPE_CHECKING:
    from time import struct_time

    from looop.home.clock import Clock
    from looop.home.config import Knobs, Runner
    from looop.spend.views import SpendStatus

_SEPARATORS = ("-", "-", "T", ":", ":", "Z")


def runner_signature(runner: Runner) -> str:
    """What the unmetered breaker is keyed on: anything that changes what the meter can read
    (changing the runner, its program or its cost spec heals an open breaker)."""
    spec = runner.cost
    parts = [runner.name, "true" if spec else "false", command_word(runner.tick) or ""]
    if spec is not None:
        parts.append(f"{spec.type} {spec.pointer} {spec.mode}")
    return "|".join(parts)


def _canonical(stamp: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SSZ`'s separators in place. Then its other characters are ASCII
    digits, and it compares with another such stamp as their instants do, or it is no time
    at all (ledger rows with such a ts never count)."""
    return (stamp[4], stamp[7], stamp[10], stamp[13], stamp[16], stamp[19]) == _SEPARATORS


# How far back from a time the ledger is read for the rows of its day (store.read_since):
# today began less than 26 h before now (a DST day lasts 25 h) and the window around it
# (below) less than 29 h before.
LOOKBACK_S = 30 * 3600


def since_stamp(t: float) -> str:
    """The UTC hour LOOKBACK_S before `t`: where a reader of t's day may stop."""
    return stamps.utc_stamp(t - LOOKBACK_S)[:13] + ":00:00Z"


def spent_today(data: str, clock: Clock) -> tuple[float, float]:
    """Today's USD toward the daily budget (rows whose ts falls on the local calendar day,
    workers' own reports bounded: totals.counted) and the part workers said. From the running
    totals when they can say (constant time); stale, they are rebuilt once and written, budget
    or none; else from the ledger's recent rows."""
    got = totals.today(data, clock)
    if got is None:
        totals.refresh(data, clock.now())
        got = totals.today(data, clock)
    if got is not None:
        n, said = totals.counted(got)
        return n / 1_000_000, said / 1_000_000

    path = os.path.join(data, COST_LEDGER)
    now = clock.now()
    try:
        text = rotate.recent_text(data, since_stamp(now))
    except OSError as e:
        raise CorruptState(f"cannot read {path}: {e.strerror}; fix its permissions") from e
    if not text:
        return 0.0, 0.0
    tm = clock.local_tm(now)
    return _sum_today(text, clock, tm[:3], _day_window(clock, now, tm))


_Window = tuple[bool, str, str, set[str], tuple[str, str]]


def _day_window(clock: Clock, now: float, tm: struct_time) -> _Window:
    """Which stamps can fall on today: (window, first, last, marks, sure), read below."""
    today = tm[:3]
    # Only rows stamped near today can count; the filter after the parse is the exact one.
    # Today began within 2 h of `lo` (a DST shift) and lasts at most 26 h, so its rows were
    # stamped in [first, last] below, as long as the local date grows across it (checked):
    # a row in looop's own spelling stamped outside is skipped unparsed (stamps of one width
    # compare as their instants), and any other row on a UTC date the window does not touch.
    lo = now - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec)
    first_t, last_t = lo - 3 * 3600, lo + 27 * 3600
    window = clock.local_tm(first_t)[:3] < today < clock.local_tm(last_t)[:3]
    # Within the window, rows stamped in [lo + 2 h, lo + 20 h) are today whatever a DST shift
    # did to `lo` (today starts within 2 h of it and lasts at least 22 h): no time to parse.
    sure = ("", "")
    first = last = ""
    if window:
        first, last = stamps.utc_stamp(first_t), stamps.utc_stamp(last_t)
        marks = {first[:11], stamps.utc_stamp(first_t + 15 * 3600)[:11], last[:11]}
        sure = (stamps.utc_stamp(lo + 2 * 3600), stamps.utc_stamp(lo + 20 * 3600))
    else:  # a zone jumping across the date line today: the wide net, no window
        marks = {stamps.utc_stamp(lo + k * 43200)[:11] for k in range(-4, 5)}
    return window, first, last, marks, sure


def _sum_today(
    text: str, clock: Clock, today: tuple[int, ...], day: _Window
) -> tuple[float, float]:
    """spent_today's answer from the ledger rows of `text` stamped on the local `today`."""
    window, first, last, marks, sure = day
    sources: dict[str, int] = {}
    for line in text.splitlines():
        at = line.find('"ts":"') if window else -1
        stamp = line[at + 6 : at + 26] if at >= 0 and line[at + 26 : at + 27] == '"' else ""
        plain = bool(stamp) and _canonical(stamp) and "\\" not in line
        if plain and line.count('"ts"') == 1:
            if not first <= stamp <= last:
                continue
        else:
            plain = False
            if not any(m in line for m in marks):
                continue
        try:
            obj = jsonio.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        amount = sane_usd(obj.get("cost_usd"))
        if amount is None:
            continue
        ts = obj.get("ts")
        if plain and ts == stamp and sure[0] <= stamp < sure[1]:
            totals.add(sources, obj, amount)
            continue
        when = stamps.parse_utc(ts) if isinstance(ts, str) else None
        if when is not None and clock.local_tm(when)[:3] == today:
            totals.add(sources, obj, amount)
    n, said = totals.counted(sources)  # whole micro-USD, as the totals add them
    return n / 1_000_000, said / 1_000_000


def daily_budget(knobs: Knobs) -> float | None:
    """THE daily budget in USD over decides and workers (max_daily_usd, 10 by default), or None
    when off (<= 0, or not finite): one answer, whatever the runner, for every face and gate."""
    v = knobs.real("max_daily_usd")
    return v if finite(v) and v > 0 else None


def unmetered_armed(knobs: Knobs, reports: bool) -> bool:
    """The unmetered breaker counts a runner's costless decides only under a budget and for a
    runner that `reports` its cost or a budget the user set: under the default one a custom
    runner's decides would only ever trip it (they are simply not counted)."""
    return daily_budget(knobs) is not None and (reports or "max_daily_usd" in knobs.given)


def spend_status(data: str, clock: Clock, knobs: Knobs, runner: Runner | None) -> SpendStatus:
    """THE spend block every face reads (status, the web, MCP, the TUI): today's spend against
    the one daily budget and each breaker, an open one with the line lifting it, read by the
    breakers' own readers (cap.py), which repair what they find corrupt (fail closed).
    CorruptState when the ledger cannot be read."""
    now, per_hour = clock.now(), knobs.num("max_decides_per_hour")
    paths = cap.at(data)
    sig = runner_signature(runner) if runner is not None else ""
    unmet = cap.unmetered_count(paths, sig) if sig else 0
    blocked = bool(sig) and cap.unmetered_blocked(paths, sig)
    recent = cap.decides_last_hour(paths, now, per_hour) if per_hour > 0 else 0
    retry = cap.decide_retry_in(paths, now, per_hour) if 0 < per_hour <= recent else 0
    name, armed = "?", False
    if runner is not None:
        name, preset = runner.name, command_word(runner.tick) in COST_REPORTING
        armed = unmetered_armed(knobs, runner.cost is not None or preset)
    day, cap_usd = spent_today(data, clock), daily_budget(knobs)
    return spend_view(day, cap_usd, name, unmet, armed and blocked, recent, per_hour, retry)


def spend_view(
    day: tuple[float, float],
    cap: float | None,
    name: str,
    unmet: int,
    unmet_open: bool,
    recent: int,
    per_hour: int,
    retry: int,
) -> SpendStatus:
    """The spend block from its readings, each open breaker with the line saying how to lift
    it (spend_status answers through this). `day`: today's spend toward
    the budget and the part workers said themselves (bounded: totals.counted)."""
    spent, said = day
    budget_open = cap is not None and spent >= cap
    capped = per_hour > 0 and recent >= per_hour
    return {
        "spent_today_usd": round(spent, 6),
        "said_today_usd": round(said, 6),
        "max_daily_usd": cap,
        "budget": {
            "open": budget_open,
            "lift": (
                f"daily budget reached ({usd(spent)} of {usd(cap or 0)}): it resets at local "
                "midnight; raise max_daily_usd in config or LOOOP_MAX_DAILY_USD (0 turns it off)"
            )
            if budget_open
            else None,
        },
        "unmetered": {
            "count": unmet,
            "limit": UNMETERED_LIMIT,
            "open": unmet_open,
            "lift": (
                f"runner '{name}' reported no cost {unmet} runs in a row: add a cost spec under "
                f"runners.{name}.cost, use a runner whose stream carries cost ({SAID}), "
                "or set max_daily_usd to 0"
            )
            if unmet_open
            else None,
        },
        "decides": {
            "last_hour": recent,
            "cap": per_hour if per_hour > 0 else None,
            "open": capped,
            "retry_in_s": retry,
            "lift": (
                f"{per_hour} decides in the last hour: the next one can run in ~{retry}s; raise "
                "LOOOP_MAX_DECIDES_PER_HOUR (0 turns the cap off)"
            )
            if capped
            else None,
        },
    }
