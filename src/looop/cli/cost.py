"""`looop cost`: the spend report (spend/report.py), and the click face of the contract verb
`cost report KIND ID RUNNER USD` (spend/record.py; its plain spelling is served without click:
contract/verbs.py). Apart from the mailbox's verbs: a report loads no ask machinery."""

from __future__ import annotations

import click

from looop.cli.app import make_ctx
from looop.spend.record import USAGE, report_cost
from looop.spend.report import GROUPINGS, SPANS, print_report


@click.command(
    "cost",
    help="Spend report: looop cost [today|week|all] [--by kind|runner|worker|model|"
    "day] [--json]. Preset CLI workers are metered from their own records each beat; "
    "others record theirs: looop cost report KIND ID RUNNER USD.",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("args", nargs=-1)
@click.option("--by", type=click.Choice(GROUPINGS), default="kind", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def cost_cmd(args: tuple[str, ...], by: str, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    # `cost report KIND ID RUNNER USD`, or the seed's `_ cost KIND ID RUNNER USD`
    if args and args[0] == "report":
        args = args[1:]
        if len(args) != 4:
            raise click.UsageError(USAGE)
    if len(args) == 4:
        report_cost(str(ctx.paths.data), ctx.clock.now(), *args, env=ctx.env)
        return
    if len(args) > 1 or (args and args[0] not in SPANS):
        raise click.UsageError(f"unknown span {' '.join(args)!r}: use today, week or all")
    span = args[0] if args else "today"
    print_report(str(ctx.paths.data), ctx.clock, span, by, as_json)
