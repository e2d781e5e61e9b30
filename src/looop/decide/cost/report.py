"""The `looop cost` report as data: spend over a span of local days, grouped one way. cli/cost.py
renders it; `--json` prints it as is."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, TypedDict

from looop.home.clock import Clock
from looop.home.cost.ledger import ledger_text, local_day, parsed_rows
from looop.home.errors import LooopError
from looop.home.paths import Paths

SPANS = ("today", "week", "all")
GROUPINGS = ("kind", "runner", "worker", "model", "day")
# Not a --by choice: the dashboard's chart, each local day's decides (ticks) and workers
# (metered or reported) apart, keyed "<day> decides" / "<day> workers".
DAY_SPLIT = "day-split"


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


def _key(row: dict[str, Any], by: str, day: date) -> str:
    if by == "day":
        return day.isoformat()
    if by == DAY_SPLIT:
        return f"{day.isoformat()} {'decides' if row.get('kind') == 'tick' else 'workers'}"
    if by == "worker":
        if row.get("kind") == "tick":
            return "(ticks)"
        v = row.get("id")
    elif by == "model":
        v = row.get("model")  # metered workers' rows name it; a tick or a report does not
        return v if isinstance(v, str) and v else "(unknown)"
    else:
        v = row.get(by)
    return v if isinstance(v, str) and v else "?"


def _check(span: str, by: str) -> None:
    if span not in SPANS:
        raise LooopError(f"unknown span {span!r}: use one of {', '.join(SPANS)}")
    if by not in GROUPINGS and by != DAY_SPLIT:
        raise LooopError(f"unknown grouping --by {by!r}: use one of {', '.join(GROUPINGS)}")


def cost_report(paths: Paths, clock: Clock, span: str = "today", by: str = "kind") -> CostReport:
    """Spend over a span (today | week = the last 7 local days | all), grouped by kind, runner,
    worker (session id; ticks as one group), model (metered workers' rows) or local day."""
    return cost_reports(paths, clock, [(span, by)])[0]


def cost_reports(paths: Paths, clock: Clock, asks: list[tuple[str, str]]) -> list[CostReport]:
    """One cost_report per (span, by), the ledger read and parsed once for them all."""
    for span, by in asks:
        _check(span, by)
    today = clock.local().date()
    text = ledger_text(paths)
    rows, bad = parsed_rows(text)
    dated = [(row, local_day(clock, row["_t"])) for row in rows]
    return [_group(paths, dated, bad, text is not None, today, span, by) for span, by in asks]


def _group(
    paths: Paths,
    dated: list[tuple[dict[str, Any], date]],
    bad: int,
    exists: bool,
    today: date,
    span: str,
    by: str,
) -> CostReport:
    start: date | None = {"today": today, "week": today - timedelta(days=6), "all": None}[span]
    groups: dict[str, list[float]] = {}
    amounts: list[float] = []
    for row, day in dated:
        if start is not None and not start <= day <= today:
            continue
        amounts.append(row["cost_usd"])
        groups.setdefault(_key(row, by, day), []).append(row["cost_usd"])
    return {
        "span": span,
        "by": by,
        "from": start.isoformat() if start is not None else None,
        "to": today.isoformat(),
        "total": round(math.fsum(amounts), 6),
        "calls": len(amounts),
        "groups": [
            {"key": k, "usd": round(math.fsum(v), 6), "calls": len(v)}
            for k, v in sorted(groups.items())
        ],
        "corrupt_lines": bad,
        "ledger": str(paths.cost_ledger),
        "exists": exists,
    }
