"""The typed shape of spend_status (the SPEND block of `looop status --json`).

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
    spent_today_usd: float
    max_daily_usd: float | None  # None when no budget
    budget: BudgetBreaker
    unmetered: UnmeteredBreaker
    decides: DecideCap


@final
class SpendError(TypedDict):
    error: str  # the ledger could not be read
