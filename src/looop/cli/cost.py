"""`looop cost`: the spend report (decide/cost/report.py computes it, this renders it), and
`looop cost report KIND ID RUNNER USD` for workers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from looop.cli.app import make_ctx
from looop.cli.costrow import USAGE, report_cost
from looop.core.errors import LooopError
from looop.decide import cost

if TYPE_CHECKING:
    from looop.decide.cost.report import CostReport

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
    rep = cost.cost_report(ctx.paths, ctx.clock, span, by)
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=True))
    else:
        click.echo(render_report(rep))


def render_report(rep: CostReport) -> str:
    """The human text of `looop cost`."""
    if not rep["exists"]:
        return f"looop cost — no cost recorded yet\n  ledger: {rep['ledger']}"
    span = rep["span"]
    if span == "today":
        head = f"looop cost — today ({rep['to']} local)"
    elif span == "week":
        head = f"looop cost — last 7 days ({rep['from']} to {rep['to']} local)"
    else:
        head = "looop cost — all time"
    calls = rep["calls"]
    lines = [head, f"  total: {cost.usd(rep['total'])}  ({calls} call{'' if calls == 1 else 's'})"]
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
    return "\n".join(lines)
