"""`looop cost [today|week|all] [--by kind|runner|worker|model|day] [--json]`: the report as
data (spend over a span of local days, grouped one way, from the day totals: days.py, and the
decides in that span whose runner reported no cost), then its text; the work of cli/cost.py
and the web's. Light, as the home is: no `typing`, `pathlib` or `datetime` of its own (the
clock loads datetime when asked a day)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.errors import LooopError
from looop.home.plain import echo
from looop.spend import usd as usd_text
from looop.spend.days import ALL, NONE, Held, add_cell, day_totals
from looop.spend.savings import savings_line, savings_view

if TYPE_CHECKING:
    from datetime import date
    from typing import Any

    from looop.home.clock import Clock
    from looop.spend.days import Days, Source
    from looop.spend.views import CostReport

SPANS = ("today", "week", "all")
GROUPINGS = ("kind", "runner", "worker", "model", "day")
# Not a --by choice: the dashboard's chart, each local day's decides (ticks) and workers
# (metered or reported) apart, keyed "<day> decides" / "<day> workers".
DAY_SPLIT = "day-split"
# Not a --span choice: the dashboard's last N local days (`window(n)`), so its chart costs
# the days it draws, not every day the home ever spent on.
WINDOW = "last "
RUNS = "runs"  # <data>/runs/<id>/result.json: each decide's kept record (paths.runs)


def window(days: int) -> str:
    """The span of the last `days` local days, today included (at least today)."""
    return f"{WINDOW}{max(1, days)}"


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


def reports_at(
    data: str, clock: Clock, asks: list[tuple[str, str]], held: Held | None = None
) -> list[CostReport]:
    """One report per (span, by) over the home at `data`, from the day totals: what the span
    holds, not every row the ledger ever got. span: today | week (the last 7 local days) |
    all | window(n); by: kind, runner, worker (session id; ticks as one group), model
    (metered workers' rows) or local day. `held`: a long-lived reader's kept days."""
    for span, by in asks:
        _check(span, by)
    today = clock.local().date()
    starts = [_start(span, today) for span, _ in asks]
    since = ALL if None in starts else min(s.isoformat() for s in starts if s is not None)
    d = day_totals(data, clock, held, since)
    return [_group(data, d, today, span, by) for span, by in asks]


def _start(span: str, today: date) -> date | None:
    if span.startswith(WINDOW):
        back = int(span[len(WINDOW) :]) - 1
    elif span == "all":
        return None
    else:
        back = 6 if span == "week" else 0
    return today.fromordinal(today.toordinal() - back)  # no timedelta: datetime's own class


def _group(data: str, d: Days, today: date, span: str, by: str) -> CostReport:
    start = _start(span, today)
    lo, hi = (start.isoformat() if start else ""), today.isoformat()
    groups: dict[str, list[int]] = {}
    usd = calls = 0
    # `all` keeps a row stamped ahead of the clock, as it always did
    for day, cells in d.span(lo, hi if start is not None else None):
        for src, (micros, n) in cells.items():
            usd += micros
            calls += n
            add_cell(groups, _key(src, by, day), micros, n)
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
        "ledger": os.path.join(data, where.COST_LEDGER),
        "exists": d.exists,
    }


def uncosted_at(data: str, clock: Clock, rep: CostReport, held: Held | None = None) -> int:
    """Decides in the report's span that left no ledger row: their runner reported no cost
    (a custom command without a cost spec). Counted from runs/ (the kept replay archive), so
    `looop cost` says "cost unknown" rather than a spend of $0."""
    runs = os.path.join(data, RUNS)
    try:
        with os.scandir(runs) as it:
            dirs = [e.name for e in it if e.is_dir()]
    except OSError:
        return 0
    try:
        got = day_totals(data, clock, held, NONE, ticks=True)
        costed, before = got.ticks or {}, got.ticks_before
    except LooopError:
        costed, before = {}, 0
    start, today = rep["from"], rep["to"]  # ISO days: compared as text, in calendar order
    n = 0
    for name in dirs:
        if name in costed:
            continue
        try:
            res = store.read_json_object(os.path.join(runs, name, "result.json"))
        except LooopError:
            continue
        ts = res.get("ts") if res else None
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            continue  # still running, or not a decide's record
        if ts <= before:
            continue  # older than the costed decides the totals keep: not said unknown
        day = clock.local(float(ts)).date().isoformat()
        if start is None or start <= day <= today:
            n += 1
    return n


def print_report(data: str, clock: Clock, span: str, by: str, as_json: bool) -> None:
    """The report, its decides of unknown cost and what the gate saved, as text or JSON."""
    held = Held()  # the day totals read once for the report and its uncosted decides
    (rep,) = reports_at(data, clock, [(span, by)], held)
    unknown = uncosted_at(data, clock, rep, held)
    saved = savings_view(data, clock)
    if as_json:
        out = {**rep, "uncosted_calls": unknown, "savings": saved}
        echo(jsonio.dumps(out, indent=2, sort_keys=True))
    else:
        echo(render_report(rep, unknown, saved))


def render_report(rep: CostReport, unknown: int = 0, saved: dict[str, Any] | None = None) -> str:
    """The human text of `looop cost`; `unknown`: decides whose runner reported no cost;
    `saved`: what the gate saved (savings.savings_view)."""
    tail = [f"  saved: {savings_line(saved)}"] if saved is not None else []
    if not rep["exists"] and not unknown:
        return "\n".join([f"looop cost — no cost recorded yet\n  ledger: {rep['ledger']}", *tail])
    span = rep["span"]
    if span == "today":
        head = f"looop cost — today ({rep['to']} local)"
    elif span == "week":
        head = f"looop cost — last 7 days ({rep['from']} to {rep['to']} local)"
    else:
        head = "looop cost — all time"
    calls = rep["calls"]
    if not rep["exists"]:  # only decides that reported nothing: no "$0", which would be a lie
        total = f"unknown  ({unknown} call{'' if unknown == 1 else 's'}, cost unknown)"
    else:
        total = f"{usd_text(rep['total'])}  ({calls} call{'' if calls == 1 else 's'}"
        total += f"; {unknown} more, cost unknown)" if unknown else ")"
    lines = [head, f"  total: {total}"]
    if unknown:
        lines.append(
            "  cost unknown: the runner reported no cost for those decides (declare its cost "
            "spec: docs/RUNNERS.md)"
        )
    groups = rep["groups"]
    if groups:
        lines.append(f"  by {rep['by']}:")
        width = max(len(g["key"]) for g in groups)
        for g in groups:
            lines.append(f"    {g['key']:<{width}}  {usd_text(g['usd']):>10}  ({g['calls']})")
    bad = rep["corrupt_lines"]
    if bad:
        lines.append(
            f"  ! {bad} corrupt ledger line{'' if bad == 1 else 's'} skipped in {rep['ledger']}"
        )
    return "\n".join(lines + tail)
