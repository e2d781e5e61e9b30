"""`looop asks` (`ask` is cli/wait.py's, `answer` cli/answer.py's), and the contract verbs' click
faces (for --help and odd spellings; their plain spellings are served without click:
contract/verbs.py): tell, told, claim, unclaim (`cost` is cli/cost.py's)."""

from __future__ import annotations

from typing import Any

import click

from looop.cli import idcomplete
from looop.cli.app import make_ctx, show_rows
from looop.cli.commands import process_clock, process_env
from looop.home.errors import LooopError
from looop.human.leases import LeaseError, run_lease, run_tell
from looop.human.mailbox import pending
from looop.human.tellbox import run_told
from looop.loop.asks import tag


@click.command("asks", help="List pending asks (LIVE: the worker waits; STRANDED: it is gone).")
@click.option("--json", "as_json", is_flag=True)
def asks_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    rows = [dict(r, status=tag(ctx, r)) for r in pending(ctx.paths.asks, ctx.paths.answers)]

    def line(r: dict[str, Any]) -> str:
        opts = f"  [{', '.join(r.get('options') or [])}]" if r.get("options") else ""
        return f"{r['id']:<20} {r['status']:<9} {r.get('prompt', '')}{opts}"

    if show_rows(rows, as_json, "no pending asks", line, indent=2, sort_keys=True):
        # a new user's first ask (setup-1) reads STRANDED until the pulse starts its worker
        note = "answer: `looop answer ID TEXT`"
        if any(r["status"] == "STRANDED" for r in rows):
            note += " · STRANDED: no worker waits on it now; the pulse (`looop up`) sends one"
        click.echo(note)


@click.command(
    "tell",
    help="Queue a message for a live worker; it reads it with `looop told`. Words after WORKER "
    "are the message, dashes and all (`looop tell w1 --no-verify is wrong`).",
    # v1.0 took a message starting with a dash as text: so do we, after WORKER
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("worker", shell_complete=idcomplete.workers)
@click.argument("message", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def tell_cmd(c: click.Context, worker: str, message: tuple[str, ...]) -> None:
    if message[0] in c.help_option_names:
        click.echo(c.get_help())  # `tell w1 --help` is a request for help, never sent
        return
    env = process_env()
    run_tell(worker, list(message), env, process_clock(env).now())


@click.command("told", help="Print (once) what was told to WORKER (default $LOOOP_SESSION_ID).")
@click.argument("worker", required=False, shell_complete=idcomplete.workers)
def told_cmd(worker: str | None) -> None:
    run_told(worker, process_env())


def _lease_verb(verb: str, help: str) -> click.Command:
    @click.command(verb, help=help)
    @click.argument("name", shell_complete=idcomplete.claims)
    @click.option("--session", default=None, help="Holder (default: $LOOOP_SESSION_ID).")
    def lease(name: str, session: str | None) -> None:
        env = process_env()
        try:
            code = run_lease(verb, name, session, env, process_clock(env).now())
        except LeaseError as e:
            raise LooopError(str(e)) from None
        raise SystemExit(code)

    return lease


claim_cmd = _lease_verb("claim", "Take a lease atomically; exit 1 if a live session holds it.")
unclaim_cmd = _lease_verb("unclaim", "Release a lease (exit 1 if another live session holds it).")
