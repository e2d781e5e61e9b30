"""Spend control, one module per job. The readers a light verb needs live in `looop.spend`
(`prices`, `ledger`, `breakers`, `cap`, `money`); this package adds what only the pulse and the
full CLI use: `meter` (reads a runner's stream) and `report` (the `looop cost` report as data;
cli/cost.py renders it). `cost.X` names every one of them."""

from __future__ import annotations

from looop.decide.cost.meter import CostMeter as CostMeter
from looop.decide.cost.meter import parse_pointer as parse_pointer
from looop.decide.cost.meter import resolve_pointer as resolve_pointer
from looop.decide.cost.report import GROUPINGS as GROUPINGS
from looop.decide.cost.report import SPANS as SPANS
from looop.decide.cost.report import CostReport as CostReport
from looop.decide.cost.report import ReportGroup as ReportGroup
from looop.decide.cost.report import cost_report as cost_report
from looop.decide.cost.report import cost_reports as cost_reports
from looop.spend import MAX_USD as MAX_USD
from looop.spend import parse_usd as parse_usd
from looop.spend import usd as usd
from looop.spend.breakers import reports_cost as reports_cost
from looop.spend.cap import DECIDE_HELD_COUNT as DECIDE_HELD_COUNT
from looop.spend.cap import DECIDE_HOLD_S as DECIDE_HOLD_S
from looop.spend.cap import DECIDE_WINDOW_S as DECIDE_WINDOW_S
from looop.spend.cap import UNMETERED_LIMIT as UNMETERED_LIMIT
from looop.spend.cap import clear_unmetered as clear_unmetered
from looop.spend.cap import decide_retry_in as decide_retry_in
from looop.spend.cap import decides_last_hour as decides_last_hour
from looop.spend.cap import note_decide as note_decide
from looop.spend.cap import record_unmetered as record_unmetered
from looop.spend.cap import unmetered_blocked as unmetered_blocked
from looop.spend.cap import unmetered_count as unmetered_count
from looop.spend.ledger import read_ledger as read_ledger
from looop.spend.ledger import record_cost as record_cost
from looop.spend.ledger import run_cost as run_cost
from looop.spend.ledger import spent_on_day as spent_on_day
from looop.spend.prices import DEFAULT_PRICES as DEFAULT_PRICES
from looop.spend.prices import command_model as command_model
from looop.spend.prices import command_word as command_word
from looop.spend.prices import lookup_price as lookup_price
from looop.spend.prices import price_table as price_table
from looop.spend.prices import price_tokens as price_tokens
from looop.spend.statusspend import daily_budget as daily_budget
from looop.spend.statusspend import runner_signature as runner_signature
from looop.spend.statusspend import spend_status as spend_status
from looop.spend.statusspend import unmetered_armed as unmetered_armed

__all__ = [
    "DECIDE_HELD_COUNT",
    "DECIDE_HOLD_S",
    "DECIDE_WINDOW_S",
    "DEFAULT_PRICES",
    "GROUPINGS",
    "MAX_USD",
    "SPANS",
    "UNMETERED_LIMIT",
    "CostMeter",
    "CostReport",
    "ReportGroup",
    "clear_unmetered",
    "command_model",
    "command_word",
    "cost_report",
    "cost_reports",
    "daily_budget",
    "decide_retry_in",
    "decides_last_hour",
    "lookup_price",
    "note_decide",
    "parse_pointer",
    "parse_usd",
    "price_table",
    "price_tokens",
    "read_ledger",
    "record_cost",
    "record_unmetered",
    "reports_cost",
    "resolve_pointer",
    "run_cost",
    "runner_signature",
    "spend_status",
    "spent_on_day",
    "unmetered_armed",
    "unmetered_blocked",
    "unmetered_count",
    "usd",
]
