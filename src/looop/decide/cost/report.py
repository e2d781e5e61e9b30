"""The `looop cost` report as data, for callers holding `Paths` (the web, tests): the work is
spend/report.py's, light so `looop cost` runs without click; its rendering is
spend/costspan.py's."""

from __future__ import annotations

import os

from looop.home.clock import Clock
from looop.home.paths import Paths
from looop.spend.days import Held
from looop.spend.report import DAY_SPLIT, GROUPINGS, SPANS, reports_at, window
from looop.spend.views import CostReport, ReportGroup

__all__ = [
    "DAY_SPLIT",
    "GROUPINGS",
    "SPANS",
    "CostReport",
    "ReportGroup",
    "cost_report",
    "cost_reports",
    "window",
]


def cost_report(paths: Paths, clock: Clock, span: str = "today", by: str = "kind") -> CostReport:
    """Spend over a span (today | week = the last 7 local days | all), grouped by kind, runner,
    worker (session id; ticks as one group), model (metered workers' rows) or local day."""
    return cost_reports(paths, clock, [(span, by)])[0]


def cost_reports(
    paths: Paths, clock: Clock, asks: list[tuple[str, str]], held: Held | None = None
) -> list[CostReport]:
    """One cost_report per (span, by), read together (spend/report.reports_at)."""
    return reports_at(os.fspath(paths.data), clock, asks, held)
