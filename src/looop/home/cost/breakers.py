"""The breakers that stop paid decides: the daily budget, the unmetered-run breaker, and (with
cap.py's hourly decide cap) their state for `looop status` and the breaker events."""

from __future__ import annotations

import os

from looop.home import store
from looop.home.clock import Clock
from looop.home.config import Knobs, Runner
from looop.home.cost import COST_REPORTING, SAID
from looop.home.cost.cap import decide_retry_in, decides_last_hour
from looop.home.cost.ledger import spend_lock, spent_on_day
from looop.home.cost.prices import command_word
from looop.home.cost.statusspend import daily_budget, spend_view, spent_today, unmetered_armed
from looop.home.errors import CorruptState
from looop.home.paths import Paths

TYPE_CHECKING = False  # not `from typing`: status imports this module on its fast path

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.home.cost.views import SpendStatus

UNMETERED_LIMIT = 3


def reports_cost(runner: Runner) -> bool:
    """A runner whose decides say what they cost: a preset CLI, or one with a cost spec."""
    return runner.cost is not None or command_word(runner.tick) in COST_REPORTING


def start_refused(
    knobs: Knobs, paths: Paths, clock: Clock, wid: str, line: Callable[[], str | None]
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
                f"(use {SAID}, or set refuse_unmetered to false)"
            )
    spent = spent_on_day(paths, clock)
    if spent >= cap:
        return (
            f"today's spend ${spent:.2f} has reached the daily budget ${cap:.2f} "
            "(max_daily_usd: decides and workers): no new worker starts until local midnight "
            "— raise max_daily_usd to start one now"
        )
    return None


def runner_signature(runner: Runner) -> str:
    """What the unmetered breaker is keyed on: anything that changes what the meter can read.
    Changing the runner, its program, or its cost spec heals an open breaker."""
    spec = runner.cost
    parts = [runner.name, "true" if spec else "false", command_word(runner.tick)]
    if spec is not None:
        parts.append(f"{spec.type} {spec.pointer} {spec.mode}")
    return "|".join(parts)


def _read_unmetered(paths: Paths) -> tuple[int, str] | None:
    """(count, sig) or None when absent; CorruptState when unreadable or the wrong shape."""
    obj = store.read_json_object(paths.cost_unmetered)
    if obj is None:
        return None
    n, sig = obj.get("count"), obj.get("sig")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(sig, str):
        raise CorruptState(f"{paths.cost_unmetered} has the wrong shape")
    return n, sig


def record_unmetered(paths: Paths, sig: str) -> int:
    """One more consecutive unmetered run at `sig`; another signature restarts at 1."""
    with spend_lock(paths):
        try:
            prev = _read_unmetered(paths)
        except CorruptState:
            prev = (UNMETERED_LIMIT - 1, sig)  # fail closed: this run opens the breaker
        n = prev[0] + 1 if prev is not None and prev[1] == sig else 1
        store.write_json(paths.cost_unmetered, {"count": n, "sig": sig})
    return n


def clear_unmetered(paths: Paths) -> None:
    store.remove(paths.cost_unmetered)


def unmetered_count(paths: Paths, sig: str) -> int:
    """Consecutive unmetered runs at `sig` (0 when another signature holds the counter)."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        return UNMETERED_LIMIT
    return got[0] if got is not None and got[1] == sig else 0


def unmetered_blocked(paths: Paths, sig: str) -> bool:
    """The breaker is open at `sig`. A corrupt counter fails closed: it is repaired as at the
    limit for this signature, so changing the runner (or a metered run) still heals it."""
    try:
        got = _read_unmetered(paths)
    except CorruptState:
        with spend_lock(paths):
            store.write_json(paths.cost_unmetered, {"count": UNMETERED_LIMIT, "sig": sig})
        return True
    return got is not None and got[1] == sig and got[0] >= UNMETERED_LIMIT


def spend_status(paths: Paths, clock: Clock, knobs: Knobs, runner: Runner | None) -> SpendStatus:
    """Today's spend against the budget and the state of each breaker, each open one with one
    line saying how to lift it (for `looop status` and the breaker events)."""
    now = clock.now()
    cap = daily_budget(knobs)
    sig = runner_signature(runner) if runner is not None else ""
    name = runner.name if runner is not None else "?"
    unmet = unmetered_count(paths, sig) if sig else 0
    armed = runner is not None and unmetered_armed(knobs, reports_cost(runner))
    unmet_open = armed and unmetered_blocked(paths, sig)
    per_hour = knobs.num("max_decides_per_hour")
    recent = decides_last_hour(paths, now, per_hour) if per_hour > 0 else 0
    capped = per_hour > 0 and recent >= per_hour
    retry = decide_retry_in(paths, now, per_hour) if capped else 0
    day = spent_today(os.fspath(paths.data), clock)
    return spend_view(day, cap, name, unmet, unmet_open, recent, per_hour, retry)
