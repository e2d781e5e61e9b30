"""`looop cost`: the spend report (decide/cost/report.py computes it, this renders it), and
`looop cost report KIND ID RUNNER USD` for workers."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import click

from looop.cli.app import make_ctx
from looop.decide import cost
from looop.decide.cost.report import CostReport, cost_reports
from looop.home import jsonio, store
from looop.home.clock import Clock
from looop.home.cost.days import NONE, Held, day_totals
from looop.home.cost.ledger import local_day
from looop.home.costrow import USAGE, report_cost
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.savings import savings_line, savings_view

SPANS = ("today", "week", "all")
BYS = ("kind", "runner", "worker", "model", "day")


@click.command(
    "cost",
    help="Spend report: looop cost [today|week|all] [--by kind|runner|worker|model|"
    "day] [--json]. Preset CLI workers are metered from their own records each beat; "
    "others record theirs: looop cost report KIND ID RUNNER USD.",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("args", nargs=-1)
@click.option("--by", type=click.Choice(BYS), default="kind", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def cost_cmd(args: tuple[str, ...], by: str, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    # `cost report KIND ID RUNNER USD`, or the seed's `_ cost KIND ID RUNNER USD`
    if args and args[0] == "report":
        args = args[1:]
        if len(args) != 4:
            raise LooopError(USAGE)
    if len(args) == 4:
        report_cost(str(ctx.paths.data), ctx.clock.now(), *args, env=ctx.env)
        return
    if len(args) > 1 or (args and args[0] not in SPANS):
        raise LooopError(f"unknown span {' '.join(args)!r}: use today, week or all")
    span = args[0] if args else "today"
    held = Held()  # the day totals read once for the report and its uncosted decides
    (rep,) = cost_reports(ctx.paths, ctx.clock, [(span, by)], held)
    unknown = uncosted_decides(ctx.paths, ctx.clock, rep, held)
    saved = savings_view(str(ctx.paths.data), ctx.clock)
    if as_json:
        out = {**rep, "uncosted_calls": unknown, "savings": saved}
        click.echo(jsonio.dumps(out, indent=2, sort_keys=True))
    else:
        click.echo(render_report(rep, unknown, saved))


def uncosted_decides(paths: Paths, clock: Clock, rep: CostReport, held: Held | None = None) -> int:
    """Decides in the report's span that left no ledger row: their runner reported no cost
    (a custom command without a cost spec). Counted from runs/ (the kept replay archive), so
    `looop cost` says "cost unknown" rather than a spend of $0."""

    try:
        dirs = [d for d in paths.runs.iterdir() if d.is_dir()]
    except OSError:
        return 0
    try:
        got = day_totals(os.fspath(paths.data), clock, held, NONE, ticks=True)
        costed, before = got.ticks or {}, got.ticks_before
    except LooopError:
        costed, before = {}, 0
    start = date.fromisoformat(rep["from"]) if rep["from"] else None
    today = date.fromisoformat(rep["to"])
    n = 0
    for d in dirs:
        if d.name in costed:
            continue
        try:
            res = store.read_json_object(d / "result.json")
        except LooopError:
            continue
        ts = res.get("ts") if res else None
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            continue  # still running, or not a decide's record
        if ts <= before:
            continue  # older than the costed decides the totals keep: not said unknown
        day = local_day(clock, float(ts))
        if start is None or start <= day <= today:
            n += 1
    return n


def render_report(rep: CostReport, unknown: int = 0, saved: dict[str, Any] | None = None) -> str:
    """The human text of `looop cost`; `unknown`: decides whose runner reported no cost;
    `saved`: what the gate saved (home/savings.savings_view)."""
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
        total = f"{cost.usd(rep['total'])}  ({calls} call{'' if calls == 1 else 's'}"
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
            lines.append(f"    {g['key']:<{width}}  {cost.usd(g['usd']):>10}  ({g['calls']})")
    bad = rep["corrupt_lines"]
    if bad:
        lines.append(
            f"  ! {bad} corrupt ledger line{'' if bad == 1 else 's'} skipped in {rep['ledger']}"
        )
    return "\n".join(lines + tail)
