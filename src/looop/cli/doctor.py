"""`looop doctor`: check what a run depends on, one line per check with its fix."""

from __future__ import annotations

from dataclasses import replace

import click

from looop.cli.app import make_ctx
from looop.home import jsonio
from looop.loop.doctor import run_checks
from looop.web.daemon import running


@click.command(
    "doctor",
    help="Check what a run depends on: config, runner CLI, data dir, sandbox, budget, model "
    "endpoint, hosts, web, service. One line each (✓ ok, ! warning, ✗ failing, with the fix); "
    "exits 1 when a check fails.\n\n\b\nExamples:\n  looop doctor\n  looop doctor --json",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the checks as a JSON list of {name, ok, level, detail, fix}.",
)
def doctor_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    # the config check says what is wrong with the config; its stderr warning would say it twice
    ctx = replace(ctx, events=replace(ctx.events, warn_to=None))
    checks = run_checks(ctx, running)
    if as_json:
        click.echo(jsonio.dumps([c.as_json() for c in checks], ensure_ascii=False))
    else:
        for c in checks:
            click.echo(c.line())
    if not all(c.ok for c in checks):
        raise SystemExit(1)
