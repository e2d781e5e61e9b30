"""The fleet's reads: `looop needs`, the needs-you queue (home/needs) of this home's workers
and those on its SSH and Kubernetes hosts — pending asks, approval prompts, idle input boxes,
budgets, usage limits, held starts and stalled workers — each with the command that answers
it; and `looop ls` (`worker list`), the fleet's table. Apart from the other reads and from
cli/workers.py, whose modules they never load (a human runs them most, with `status`)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from looop.cli.commands import home_here, process_env, seconds
from looop.core.events import emitter_for
from looop.home import jsonio
from looop.home.clock import Clock
from looop.home.config import knobs_at
from looop.home.errors import LooopError
from looop.home.revive import revive
from looop.home.terminal import colour_on
from looop.remote.fleet import remote_rows
from looop.runners.presets import default_config_obj
from looop.views.fleet import fleet_json, fleet_rows_at, fleet_table
from looop.views.needs import needs_at, needs_json, needs_text


@click.command(
    "needs",
    help="What waits on you: pending asks, workers at an approval prompt or idle at their "
    "input box, paused at a budget or a usage limit, held starts, stalled workers; each with "
    "its answer.",
)
@click.option("--json", "as_json", is_flag=True, help="The items as JSON.")
def needs_cmd(as_json: bool) -> None:
    data, rows, clock = _fleet(False, revived=False)
    items = needs_at(data, rows)
    if as_json:
        click.echo(needs_json(items))
    else:
        click.echo(needs_text(items, clock.now()), nl=False)


def _fleet(all_sessions: bool, revived: bool = True) -> tuple[str, list[dict[str, Any]], Clock]:
    """The home's fleet rows, read as `status` reads the home (strings, no Ctx); `revived`: a
    pulse wanted up and lost is started again first."""
    data, config, env, clock = home_here()
    if revived:
        revive(data, config, env, clock)
    said = emitter_for(env, clock, None, None)  # a config's trouble, on stderr as a Ctx says it
    knobs = knobs_at(
        config, default_config_obj(), env, lambda m: said.emit("warn", "config.warn", m)
    )
    stuck = knobs.num("worker_stuck_secs")
    return data, fleet_rows_at(data, clock, stuck, all_sessions, env, remote_rows), clock


def _rows(all_sessions: bool) -> list[dict[str, Any]]:
    return _fleet(all_sessions)[1]


@click.command("list", help="List the pulse and workers with health (busy, waiting-ask, stuck).")
@click.option("-a", "--all", "all_sessions", is_flag=True, help="Include finished workers.")
@click.option("-w", "--watch", is_flag=True, help="Redraw until Ctrl-C.")
@click.option("--interval", "-n", type=seconds(0.2, 3600), default=2.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(all_sessions: bool, watch: bool, interval: float, as_json: bool) -> None:
    if as_json:
        click.echo(fleet_json(_rows(all_sessions)))
        return
    colour = colour_on(sys.stdout.isatty(), process_env())
    if not watch:
        click.echo(fleet_table(_rows(all_sessions), colour))
        return
    raw = getattr(sys.stdout, "_inner", sys.stdout)  # looop's own clear-screen, not agent text
    try:
        while True:
            raw.write("\x1b[H\x1b[2J")
            table = fleet_table(_rows(all_sessions), colour)
            click.echo(f"every {interval:g}s · Ctrl-C stops\n" + table)
            time.sleep(interval)
    except KeyboardInterrupt:
        return


@click.command(
    "show", help="Everything known of one worker: its `ls -a` row, every field (--json: as is)."
)
@click.argument("worker_id")
@click.option("--json", "as_json", is_flag=True, help="Print the row as one JSON object.")
def worker_show(worker_id: str, as_json: bool) -> None:
    row = next((r for r in _rows(True) if r.get("id") == worker_id), None)
    if row is None:
        raise LooopError(f"no worker {worker_id} — `looop ls -a` lists them")
    if as_json:
        click.echo(jsonio.dumps(row, indent=2, sort_keys=True, default=str))
        return
    for key in sorted(row):
        if row[key] not in (None, "", [], {}):
            click.echo(f"{key + ':':<16} {row[key]}")
