"""Spend control, one module per job: `meter` (reads a runner's stream), `prices` (the price
table), `ledger` (cost.jsonl), `breakers` (daily budget, unmetered runs, their status), `cap`
(hourly decide cap), `report` (the `looop cost` report as data; cli/cost.py renders it),
`money` (amounts).

`cost.X` and `from looop.decide.cost import X` keep working for every name below. They load
on first use: `looop status` needs the breakers, not the meter or the report."""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing`: status imports this package on its fast path

if TYPE_CHECKING:
    from looop.decide.cost.breakers import UNMETERED_LIMIT as UNMETERED_LIMIT
    from looop.decide.cost.breakers import clear_unmetered as clear_unmetered
    from looop.decide.cost.breakers import daily_budget as daily_budget
    from looop.decide.cost.breakers import record_unmetered as record_unmetered
    from looop.decide.cost.breakers import runner_signature as runner_signature
    from looop.decide.cost.breakers import spend_status as spend_status
    from looop.decide.cost.breakers import unmetered_blocked as unmetered_blocked
    from looop.decide.cost.breakers import unmetered_count as unmetered_count
    from looop.decide.cost.cap import DECIDE_HELD_COUNT as DECIDE_HELD_COUNT
    from looop.decide.cost.cap import DECIDE_HOLD_S as DECIDE_HOLD_S
    from looop.decide.cost.cap import DECIDE_WINDOW_S as DECIDE_WINDOW_S
    from looop.decide.cost.cap import decide_retry_in as decide_retry_in
    from looop.decide.cost.cap import decides_last_hour as decides_last_hour
    from looop.decide.cost.cap import note_decide as note_decide
    from looop.decide.cost.ledger import read_ledger as read_ledger
    from looop.decide.cost.ledger import record_cost as record_cost
    from looop.decide.cost.ledger import run_cost as run_cost
    from looop.decide.cost.ledger import spent_on_day as spent_on_day
    from looop.decide.cost.meter import CostMeter as CostMeter
    from looop.decide.cost.meter import parse_pointer as parse_pointer
    from looop.decide.cost.meter import resolve_pointer as resolve_pointer
    from looop.decide.cost.money import MAX_USD as MAX_USD
    from looop.decide.cost.money import parse_usd as parse_usd
    from looop.decide.cost.money import usd as usd
    from looop.decide.cost.prices import DEFAULT_PRICES as DEFAULT_PRICES
    from looop.decide.cost.prices import command_model as command_model
    from looop.decide.cost.prices import command_word as command_word
    from looop.decide.cost.prices import lookup_price as lookup_price
    from looop.decide.cost.prices import price_table as price_table
    from looop.decide.cost.prices import price_tokens as price_tokens
    from looop.decide.cost.report import GROUPINGS as GROUPINGS
    from looop.decide.cost.report import SPANS as SPANS
    from looop.decide.cost.report import CostReport as CostReport
    from looop.decide.cost.report import ReportGroup as ReportGroup
    from looop.decide.cost.report import cost_report as cost_report
    from looop.decide.cost.report import cost_reports as cost_reports

# Which module each re-exported name lives in (mypy reads the imports above; this runs).
_HOME: dict[str, str] = {
    **dict.fromkeys(
        (
            "UNMETERED_LIMIT",
            "clear_unmetered",
            "daily_budget",
            "record_unmetered",
            "runner_signature",
            "spend_status",
            "unmetered_blocked",
            "unmetered_count",
        ),
        "breakers",
    ),
    **dict.fromkeys(
        (
            "DECIDE_HELD_COUNT",
            "DECIDE_HOLD_S",
            "DECIDE_WINDOW_S",
            "decide_retry_in",
            "decides_last_hour",
            "note_decide",
        ),
        "cap",
    ),
    **dict.fromkeys(("read_ledger", "record_cost", "run_cost", "spent_on_day"), "ledger"),
    **dict.fromkeys(("CostMeter", "parse_pointer", "resolve_pointer"), "meter"),
    **dict.fromkeys(("MAX_USD", "parse_usd", "usd"), "money"),
    **dict.fromkeys(
        (
            "DEFAULT_PRICES",
            "command_model",
            "command_word",
            "lookup_price",
            "price_table",
            "price_tokens",
        ),
        "prices",
    ),
    **dict.fromkeys(
        ("GROUPINGS", "SPANS", "CostReport", "ReportGroup", "cost_report", "cost_reports"),
        "report",
    ),
}

__all__ = sorted(_HOME)

if not TYPE_CHECKING:  # hidden from mypy, so a misspelt name stays an error there

    def __getattr__(name: str) -> object:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # __import__, not importlib: importlib is not loaded on status's fast path
        return getattr(__import__(f"{__name__}.{home}", fromlist=(name,)), name)

    def __dir__() -> list[str]:
        return sorted({*globals(), *_HOME})
