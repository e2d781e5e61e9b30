"""`looop answer`: a human's answer to a pending ask, journaled as the user's from the CLI (as
the web and watch journal theirs). A family of its own: a blocked `ask` waits on it, so it
loads only what answering needs, not the ask's notifying nor the spend reports of
cli/mailbox.py."""

from __future__ import annotations

import click

from looop.cli import idcomplete
from looop.cli.app import ACTOR, body, make_ctx
from looop.human.mailbox import answer


@click.command("answer", help="Answer a pending ask (TEXT, words joined, or - for stdin).")
@click.argument("ask_id", shell_complete=idcomplete.asks)
@click.argument("text", nargs=-1)
@click.option(
    "--force", is_flag=True, help="Replace an existing answer, or answer outside the --options."
)
def answer_cmd(ask_id: str, text: tuple[str, ...], force: bool) -> None:
    ctx = make_ctx(events_to=None)
    said = body(text, "answer").rstrip("\n")
    answer(ctx.paths.asks, ctx.paths.answers, ask_id, said, ctx.clock.now(), force)
    ctx.events.record("answer", id=ask_id, actor=ACTOR, line=f"{ACTOR}: answered {ask_id}: {said}")
    click.echo(f"answered {ask_id}")
