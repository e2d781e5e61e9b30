"""`looop status`: the pulse, last beat, failures, spend and goals at a glance, read from the
data dir as strings (views/status.py) with no Ctx: a human's most frequent verb loads click
and the light home alone."""

from __future__ import annotations

import sys

import click

from looop.cli.commands import home_here
from looop.home.revive import revive
from looop.home.terminal import colour_on
from looop.views.status import config_trouble, gather_status_at
from looop.views.statustext import print_status


@click.command(
    "status",
    help="Pulse, last beat, failures and goals at a glance (pure read). Exits 1 when the "
    "config cannot be used or holds a key looop does not read (a typo), after printing it all.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print it as one JSON object (docs/schema/state.schema.json).",
)
def status_cmd(as_json: bool) -> None:
    data, config, env, clock = home_here()
    revive(data, config, env, clock)  # a pulse wanted up and lost: started again (home/revive)
    st = gather_status_at(data, config, env, clock, all_workers=as_json)
    print_status(st, as_json, colour_on(not as_json and sys.stdout.isatty(), env))
    if config_trouble(st):
        raise SystemExit(1)
