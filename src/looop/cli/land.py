"""`looop land ID`: a human lands worker ID's change (act/landing.py) — merged into its base in
the user's repository, or pushed with a pull request opened (--pr). Journaled as the user's,
from the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from looop.act.landing import land
from looop.cli import idcomplete
from looop.cli.app import make_ctx

ACTOR = "user (cli)"


@click.command(
    "land",
    help="Land worker ID's change: merge its branch into its base in your repository (a "
    "fast-forward or a merge commit, as land.merge configures), or push it and open a pull "
    "request (--pr, land.pr_command). A human's action: no decision can do it.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.option(
    "--merge", "mode", flag_value="merge", help="A merge commit, whatever the config says."
)
@click.option(
    "--ff", "mode", flag_value="ff", help="A fast-forward only, whatever the config says."
)
@click.option("--pr", "mode", flag_value="pr", help="Push the branch and open a pull request.")
@click.option("--into", metavar="BRANCH", help="The base branch (default: your checkout's).")
@click.option("--json", "as_json", is_flag=True, help="Print what landed as one JSON object.")
def land_cmd(worker_id: str, mode: str | None, into: str | None, as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    done = land(ctx, ctx.knobs(), worker_id, mode, into, ACTOR)
    if as_json:
        click.echo(json.dumps(asdict(done), indent=2))
        return
    if done.mode == "pr":
        click.echo(f"pushed {done.branch} and opened a pull request into {done.into}: {done.url}")
        return
    how = "fast-forwarded" if done.mode == "ff" else "merged"
    click.echo(
        f"landed worker {done.wid}: {done.branch} {how} into {done.into} at {done.commit[:12]}"
    )
