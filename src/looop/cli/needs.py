"""`looop needs`: the needs-you queue (home/needs) of this home's workers and those on its
SSH and Kubernetes hosts — pending asks, approval prompts, idle input boxes, budgets, usage
limits, held starts and stalled workers — each with the command that answers it."""

from __future__ import annotations

import os

import click

from looop.cli.app import make_ctx
from looop.home.needs import needs_at, needs_json, needs_text
from looop.remote.fleet import fleet_rows


@click.command(
    "needs",
    help="What waits on you: pending asks, workers at an approval prompt or idle at their "
    "input box, paused at a budget or a usage limit, held starts, stalled workers; each with "
    "its answer.",
)
@click.option("--json", "as_json", is_flag=True, help="The items as JSON.")
def needs_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    items = needs_at(os.fspath(ctx.paths.data), fleet_rows(ctx, False))
    if as_json:
        click.echo(needs_json(items))
    else:
        click.echo(needs_text(items, ctx.clock.now()), nl=False)
