"""The `looop cost` report as data: spend over a span of local days, grouped one way. cli/cost.py
renders it; `--json` prints it as is."""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import TypedDict

from looop.home.clock import Clock
from looop.home.cost.days import ALL, Days, Held, Source, day_totals
from looop.home.errors import LooopError
from looop.home.paths import Paths

SPANS = ("today", "week", "all")
GROUPINGS = ("kind", "runner", "worker", "model", "day")
# Not a --by choice: the dashboard's chart, each local day's decides (ticks) and workers
# (metered or reported) apart, keyed "<day> decides" / "<day> workers".
DAY_SPLIT = "day-split"
# Not a --span choice: the dashboard's last N local days (`window(n)`), so its chart costs
# the days it draws, not every day the home ever spent on.
WINDOW = "last "


def window(days: int) -> str:
    """The span of the last `days` local days, today included (at least today)."""
    return f"{WINDOW}{max(1, days)}"


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


def _key(src: Source, by: str, day: str) -> str:
    kind, wid, runner, model, _ = src
    if by == "day":
        return day
    if by == DAY_SPLIT:
        return f"{day} {'decides' if kind == 'tick' else 'workers'}"
    if by == "worker":
        return "(ticks)" if kind == "tick" else wid or "?"
    if by == "model":
        return model or "(unknown)"  # metered workers' rows name it; a tick or a report does not
    return (runner if by == "runner" else kind) or "?"


def _check(span: str, by: str) -> None:
    if span not in SPANS and not (span.startswith(WINDOW) and span[len(WINDOW) :].isdigit()):
        raise LooopError(f"unknown span {span!r}: use one of {', '.join(SPANS)}")
    if by not in GROUPINGS and by != DAY_SPLIT:
        raise LooopError(f"unknown grouping --by {by!r}: use one of {', '.join(GROUPINGS)}")


def cost_report(paths: Paths, clock: Clock, span: str = "today", by: str = "kind") -> CostReport:
    """Spend over a span (today | week = the last 7 local days | all), grouped by kind, runner,
    worker (session id; ticks as one group), model (metered workers' rows) or local day."""
    return cost_reports(paths, clock, [(span, by)])[0]


def cost_reports(
    paths: Paths, clock: Clock, asks: list[tuple[str, str]], held: Held | None = None
) -> list[CostReport]:
    """One cost_report per (span, by), from the day totals (home/cost/days.py): what the span
    holds, not every row the ledger ever got. `held`: a long-lived reader's kept days."""
    for span, by in asks:
        _check(span, by)
    today = clock.local().date()
    starts = [_start(span, today) for span, _ in asks]
    since = ALL if None in starts else min(s.isoformat() for s in starts if s is not None)
    d = day_totals(os.fspath(paths.data), clock, held, since)
    return [_group(paths, d, today, span, by) for span, by in asks]


def _start(span: str, today: date) -> date | None:
    if span.startswith(WINDOW):
        return today - timedelta(days=int(span[len(WINDOW) :]) - 1)
    return {"today": today, "week": today - timedelta(days=6), "all": None}[span]


def _group(paths: Paths, d: Days, today: date, span: str, by: str) -> CostReport:
    start = _start(span, today)
    lo, hi = (start.isoformat() if start else ""), today.isoformat()
    groups: dict[str, list[int]] = {}
    usd = calls = 0
    # `all` keeps a row stamped ahead of the clock, as it always did
    for day, cells in d.span(lo, hi if start is not None else None):
        for src, (micros, n) in cells.items():
            usd += micros
            calls += n
            g = groups.setdefault(_key(src, by, day), [0, 0])
            g[0] += micros
            g[1] += n
    return {
        "span": span,
        "by": by,
        "from": start.isoformat() if start is not None else None,
        "to": hi,
        "total": round(usd / 1_000_000, 6),
        "calls": calls,
        "groups": [
            {"key": k, "usd": round(v[0] / 1_000_000, 6), "calls": v[1]}
            for k, v in sorted(groups.items())
        ],
        "corrupt_lines": d.bad,
        "ledger": str(paths.cost_ledger),
        "exists": d.exists,
    }
