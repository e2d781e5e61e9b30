"""What the breakers need beyond the spend block (statusspend.spend_status): whether a runner
reports its cost, a new worker's refusal under the daily budget, and the unmetered breaker's
key (its counter and the decide cap live in cap.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.clock import Clock
from looop.home.config import Knobs, Runner
from looop.home.paths import Paths
from looop.spend import COST_REPORTING, SAID
from looop.spend.ledger import spent_on_day
from looop.spend.prices import command_word
from looop.spend.statusspend import daily_budget

if TYPE_CHECKING:
    from collections.abc import Callable


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
