"""The typed shapes of spend_status (the SPEND block of `looop status --json`) and of the
`looop cost` report (spend/report.py).

Imported only under TYPE_CHECKING: `looop status` must not load `typing` at runtime."""

from __future__ import annotations

from typing import TypedDict, final


class BudgetBreaker(TypedDict):
    open: bool
    lift: str | None  # one line saying how to lift it, while open


class UnmeteredBreaker(TypedDict):
    count: int  # runs in a row that reported no cost
    limit: int
    open: bool
    lift: str | None


class DecideCap(TypedDict):
    last_hour: int
    cap: int | None  # None when off
    open: bool
    retry_in_s: int
    lift: str | None


@final  # final: `"error" in spend` tells the two shapes apart (mypy)
class SpendStatus(TypedDict):
    spent_today_usd: float  # toward the daily budget
    said_today_usd: float  # of it, workers' own reports (bounded: spend/totals.SAID_*)
    max_daily_usd: float | None  # None when no budget
    budget: BudgetBreaker
    unmetered: UnmeteredBreaker
    decides: DecideCap


@final
class SpendError(TypedDict):
    error: str  # the ledger could not be read


class ReportGroup(TypedDict):
    key: str  # the kind, runner, worker id ("(ticks)" for ticks), model or local day
    usd: float
    calls: int


# Functional form: "from" is a keyword. Plain JSON types only, so --json prints it as is.
CostReport = TypedDict(
    "CostReport",
    {
        "span": str,  # today | week | all
        "by": str,  # kind | runner | worker | model | day
        "from": str | None,  # first local day counted (ISO); None for all time
        "to": str,  # today, local (ISO)
        "total": float,  # USD
        "calls": int,
        "groups": list[ReportGroup],  # sorted by key
        "corrupt_lines": int,
        "ledger": str,  # the ledger's path
        "exists": bool,  # False: no ledger yet
    },
)
