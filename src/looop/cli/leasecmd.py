"""click faces of claim/unclaim (for --help and odd spellings); the work is in cli.lease."""

from __future__ import annotations

import click

from looop.cli import idcomplete
from looop.cli.commands import process_clock, process_env
from looop.home.errors import LooopError
from looop.human.claims import run_lease
from looop.human.leases import LeaseError


def _run(verb: str, name: str, session: str | None) -> None:
    env = process_env()
    try:
        code = run_lease(verb, name, session, env, process_clock(env).now())
    except LeaseError as e:
        raise LooopError(str(e)) from None
    raise SystemExit(code)


@click.command("claim", help="Take a lease atomically; exit 1 if a live session holds it.")
@click.argument("name", shell_complete=idcomplete.claims)
@click.option("--session", default=None, help="Holder (default: $LOOOP_SESSION_ID).")
def claim_cmd(name: str, session: str | None) -> None:
    _run("claim", name, session)


@click.command("unclaim", help="Release a lease (exit 1 if another live session holds it).")
@click.argument("name", shell_complete=idcomplete.claims)
@click.option("--session", default=None, help="Holder (default: $LOOOP_SESSION_ID).")
def unclaim_cmd(name: str, session: str | None) -> None:
    _run("unclaim", name, session)
