"""The spend block (spend_status), the one daily budget (daily_budget), today's spend toward it
(spent_today) and a new worker's refusal under it (start_refused): what status, doctor, every
gate and every face's start read, so they agree. And the state the other breakers keep: the
hourly decide cap (every decide attempt is stamped in `.decide-ledger.json`; a rolling hour of
them closes the cap until the oldest ages out) and the unmetered runs in a row
(`.cost-unmetered.json`), under the lock every spend-state writer takes."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from looop.home import locks, stamps, store, where
from looop.home.errors import CorruptState
from looop.home.where import COST_LEDGER
from looop.runners import COST_REPORTING, reporting_said
from looop.spend import finite, totals, usd
from looop.spend.prices import command_word

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Any

    from looop.home.clock import Clock
    from looop.home.config import Knobs, Runner
    from looop.spend.views import SpendStatus


def runner_signature(runner: Runner) -> str:
    """What the unmetered breaker is keyed on: anything that changes what the meter can read
    (changing the runner, its program or its cost spec heals an open breaker)."""
    spec = runner.cost
    parts = [runner.name, "true" if spec else "false", command_word(runner.tick) or ""]
    if spec is not None:
        parts.append(f"{spec.type} {spec.pointer} {spec.mode}")
    return "|".join(parts)


# How far back from now the ledger is read for today's rows (store.read_since): today began
# less than 26 h before now (a DST day lasts 25 h).
LOOKBACK_S = 30 * 3600


def spent_today(data: str, clock: Clock) -> tuple[float, float]:
    """Today's USD toward the daily budget (rows whose ts falls on the local calendar day,
    workers' own reports bounded: totals.counted) and the part workers said. From the running
    totals when they can say (constant time); stale, they are rebuilt once and written, budget
    or none; else from the ledger's recent rows."""
    n, said = totals.counted(today_sources(data, clock))
    return n / 1_000_000, said / 1_000_000


def today_sources(data: str, clock: Clock) -> dict[str, int]:
    """Today's micro-USD per source (totals.source), as spent_today reads them."""
    got = totals.today(data, clock)
    if got is None:
        totals.refresh(data, clock.now())
        got = totals.today(data, clock)
    return _scan_today(data, clock) if got is None else got


def _scan_today(data: str, clock: Clock) -> dict[str, int]:
    """Today's micro-USD per source from the ledger's rows of the last LOOKBACK_S."""
    now = clock.now()
    try:
        text = totals.recent_text(data, stamps.utc_stamp(now - LOOKBACK_S)[:13] + ":00:00Z")
    except OSError as e:
        path = os.path.join(data, COST_LEDGER)
        raise CorruptState(f"cannot read {path}: {e.strerror}; fix its permissions") from e
    return add_today(text or "", clock, {})


def add_today(text: str, clock: Clock, sources: dict[str, int]) -> dict[str, int]:
    """The micro-USD of ledger text's rows stamped on today's local date added to `sources`."""
    today = clock.local_tm(clock.now())[:3]
    for line in text.splitlines():
        row = totals.parse_row(line)
        if row is not None and clock.local_tm(row[2])[:3] == today:
            totals.add(sources, row[0], row[1])
    return sources


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


def reports_cost(runner: Runner) -> bool:
    """A runner whose decides say what they cost: a preset CLI, or one with a cost spec."""
    return runner.cost is not None or command_word(runner.tick) in COST_REPORTING


def start_refused(
    knobs: Knobs, data: str, clock: Clock, wid: str, line: Callable[[], str | None]
) -> str | None:
    """Why a new worker may not start under the daily budget (max_daily_usd covers decides
    and metered workers alike), or None: at it, no new worker until local midnight or a
    higher budget; with refuse_unmetered on, none on a CLI looop cannot meter (fail closed).
    `line`: the worker's command line, asked for only with that setting on. Every face's
    start (the CLI verb, the web API, MCP) asks this before anything is written."""
    cap = daily_budget(knobs)
    if cap is None:
        return None
    if knobs.values.get("refuse_unmetered"):
        prog = command_word(line())
        if prog not in COST_REPORTING:
            return (
                f"worker {wid}: its CLI '{prog or '?'}' leaves no spend record "
                "looop can meter, and refuse_unmetered is on while a daily budget is "
                f"(use {reporting_said()}, or set refuse_unmetered to false)"
            )
    spent = spent_today(data, clock)[0]
    if spent >= cap:
        return (
            f"today's spend ${spent:.2f} has reached the daily budget ${cap:.2f} "
            "(max_daily_usd: decides and workers): no new worker starts until local midnight "
            "— raise max_daily_usd to start one now"
        )
    return None


def spend_status(data: str, clock: Clock, knobs: Knobs, runner: Runner | None) -> SpendStatus:
    """THE spend block every face reads (status, the web, MCP, the TUI): today's spend against
    the one daily budget and each breaker, an open one with the line lifting it, read by the
    breakers' own readers (below), which repair what they find corrupt (fail closed).
    CorruptState when the ledger cannot be read."""
    now, per_hour = clock.now(), knobs.num("max_decides_per_hour")
    sig = runner_signature(runner) if runner is not None else ""
    unmet = unmetered_at(data, sig) if sig else 0
    recent, retry = decide_cap(data, now, per_hour) if per_hour > 0 else (0, 0)
    name, armed = "?", False
    if runner is not None:
        name, armed = runner.name, unmetered_armed(knobs, reports_cost(runner))
    (spent, said), budget = spent_today(data, clock), daily_budget(knobs)
    unmet_open = armed and unmet >= UNMETERED_LIMIT
    budget_open = budget is not None and spent >= budget
    capped = per_hour > 0 and recent >= per_hour
    return {
        "spent_today_usd": round(spent, 6),
        "said_today_usd": round(said, 6),
        "max_daily_usd": budget,
        "budget": {
            "open": budget_open,
            "lift": (
                f"daily budget reached ({usd(spent)} of {usd(budget or 0)}): it resets at local "
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
                f"runners.{name}.cost, use a runner whose stream carries cost "
                f"({reporting_said()}), or set max_daily_usd to 0"
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


# -- the decide cap and the unmetered breaker's state ----------------------------------------

UNMETERED_LIMIT = 3

DECIDE_WINDOW_S = 3600
# A decide ledger that cannot be read holds the cap closed this long (then it is empty again).
DECIDE_HOLD_S = 3600
# What decide_cap counts while held when it is not told the cap: above any sane cap.
DECIDE_HELD_COUNT = 1_000_000


def _ledger(data: str) -> str:
    return where.join(data, where.DECIDE_LEDGER)


def _counter(data: str) -> str:
    return where.join(data, where.COST_UNMETERED)


def _read_decides(data: str, now: float, repair: bool = True) -> tuple[list[float], float]:
    """(attempt stamps in the rolling hour, held_until). A corrupt ledger is repaired as held
    closed for an hour: fail closed, then heal on its own (a pure reader only reports it)."""
    try:
        obj = store.read_json_object(_ledger(data))
        if obj is None:
            return [], 0.0
        raw, held = obj.get("attempts", []), obj.get("held_until", 0)
        if not isinstance(raw, list) or _amount_ts(held) is None:
            raise CorruptState("shape")
        stamps = [_amount_ts(t) for t in raw]
        if any(t is None for t in stamps):
            raise CorruptState("shape")
    except CorruptState:
        held_until = now + DECIDE_HOLD_S
        if repair:
            store.write_json(_ledger(data), {"attempts": [], "held_until": held_until})
        return [], held_until
    lo, hi = now - DECIDE_WINDOW_S, now + DECIDE_WINDOW_S  # far-future stamps: a clock jump
    # A stamp after now was made no later than now (the wall clock stepped back since): it
    # counts as now, so it leaves the rolling hour an hour from now, not an hour plus the step;
    # a hold likewise never outlasts its own length.
    kept = [t for t in stamps if t is not None and lo < t <= hi]
    held_until = min(float(held), now + DECIDE_HOLD_S)
    if repair and (any(t > now for t in kept) or held_until < held):
        kept = [min(t, now) for t in kept]  # restamped, or the next read would wait it again
        rec: dict[str, Any] = {"attempts": kept}
        if held_until > now:
            rec["held_until"] = held_until
        store.write_json(_ledger(data), rec)
    return [min(t, now) for t in kept], held_until


def _amount_ts(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def note_decide(data: str, now: float) -> None:
    """Record one decide attempt (successful or not) in the rolling hour."""
    with spend_lock(data):
        stamps, held = _read_decides(data, now)
        stamps.append(round(now, 3))
        obj: dict[str, Any] = {"attempts": stamps[-100_000:]}
        if held > now:
            obj["held_until"] = held
        store.write_json(_ledger(data), obj)


def _read_locked(data: str, now: float) -> tuple[list[float], float]:
    """_read_decides for a reader, under the spend lock if it can be had: a data dir that is
    new (nothing to read) or read-only (no writer to race) is read without it, unrepaired,
    and without creating anything."""
    if os.path.exists(_ledger(data)):
        try:
            lock = spend_lock(data)
            lock.__enter__()
        except OSError:
            pass
        else:
            try:
                return _read_decides(data, now)
            finally:
                lock.__exit__(None, None, None)
    return _read_decides(data, now, repair=False)


def decide_cap(data: str, now: float, cap: int | None = None) -> tuple[int, int]:
    """Decide attempts in the last 3600 s, and whole seconds until one more fits under `cap`
    (0 when it fits now). While a corrupt ledger holds the cap closed the count is `cap` when
    given (else DECIDE_HELD_COUNT), so `count >= cap` idles the beat."""
    stamps, held = _read_locked(data, now)
    if held > now:
        n = max(len(stamps), cap if cap is not None and cap > 0 else DECIDE_HELD_COUNT)
        return n, max(1, math.ceil(held - now))
    if cap is None or cap <= 0 or len(stamps) < cap:
        return len(stamps), 0
    oldest_to_drop = sorted(stamps)[len(stamps) - cap]
    return len(stamps), max(1, math.ceil(oldest_to_drop + DECIDE_WINDOW_S - now))


def spend_lock(data: str) -> AbstractContextManager[None]:
    # Our own lock file, not the state lock: a caller holding that one must not deadlock here.
    return locks.dir_lock(where.join(data, f"{where.LOCKS}/spend"))


def _read_unmetered(data: str) -> tuple[int, str] | None:
    """(count, sig) or None when absent; CorruptState when unreadable or the wrong shape."""
    obj = store.read_json_object(_counter(data))
    if obj is None:
        return None
    n, sig = obj.get("count"), obj.get("sig")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(sig, str):
        raise CorruptState(f"{_counter(data)} has the wrong shape")
    return n, sig


def record_unmetered(data: str, sig: str) -> int:
    """One more consecutive unmetered run at `sig`; another signature restarts at 1."""
    with spend_lock(data):
        try:
            prev = _read_unmetered(data)
        except CorruptState:
            prev = (UNMETERED_LIMIT - 1, sig)  # fail closed: this run opens the breaker
        n = prev[0] + 1 if prev is not None and prev[1] == sig else 1
        store.write_json(_counter(data), {"count": n, "sig": sig})
    return n


def clear_unmetered(data: str) -> None:
    store.remove(_counter(data))


def unmetered_at(data: str, sig: str) -> int:
    """Consecutive unmetered runs at `sig` (0 when another signature holds the counter). A
    corrupt counter fails closed: it is repaired as at the limit for this signature, so
    changing the runner (or a metered run) still heals it."""
    try:
        got = _read_unmetered(data)
    except CorruptState:
        with spend_lock(data):
            store.write_json(_counter(data), {"count": UNMETERED_LIMIT, "sig": sig})
        return UNMETERED_LIMIT
    return got[0] if got is not None and got[1] == sig else 0


def unmetered_blocked(data: str, sig: str) -> bool:
    """The breaker is open at `sig` (unmetered_at)."""
    return unmetered_at(data, sig) >= UNMETERED_LIMIT
