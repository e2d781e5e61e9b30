"""`looop land ID`: a human lands a worker's change as their last `looop review ID` showed it
(act/landing.py), merged into its base in the user's repository or pushed with a pull request
opened (--pr), here, on an SSH host or in a pod; journaled as the user's, from the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from looop.act.journal import append_journal
from looop.act.landaway import change_of
from looop.act.landing import Approved, Landed, LandRequest, land
from looop.cli import idcomplete
from looop.cli.app import ACTOR, make_ctx
from looop.cli.steermove import steer
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of
from looop.remote.fleet import remote_rows
from looop.sessions.state import typed_mark
from looop.workers import attempts, reviewrounds
from looop.workers.ids import normalise_target


@click.command(
    "land",
    help="Land worker ID's change as your last `looop review ID` showed it: merge its branch "
    "into its base in your repository (a fast-forward or a merge commit, as land.merge "
    "configures), or push it and open a pull request (--pr, land.pr_command). A branch that "
    "moved since that review is refused. A human's action: no decision can do it.",
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
@click.option(
    "--repo",
    "repo",
    metavar="NAME",
    help="Of a worker of several repositories, land only this one (its folder's name).",
)
@click.option(
    "--at",
    metavar="SHA",
    help="Land this commit of the branch (of --repo NAME's, for a worker of several), not the "
    "tip your last review showed: later commits stay unlanded.",
)
@click.option(
    "--pick",
    type=click.IntRange(1),
    metavar="N",
    help="Of ID's attempts (ID.1, ID.2 …), land ID.N and stop the others (branches kept).",
)
@click.option("--force", is_flag=True, help="--pick an attempt still at work or failing verify.")
@click.option("--json", "as_json", is_flag=True, help="Print what landed as one JSON object.")
def land_cmd(
    worker_id: str,
    mode: str | None,
    into: str | None,
    repo: str | None,
    at: str | None,
    pick: int | None,
    force: bool,
    as_json: bool,
) -> None:
    ctx = make_ctx(events_to=None)
    actor = land_actor(ctx, ACTOR, at_prompt())  # inside a worker's session: a human's only
    wid = group = normalise_target(worker_id)
    others: list[dict[str, Any]] = []
    if pick is not None or attempts_of(str(ctx.paths.data), group):
        wid, others = attempts.pick(ctx, group, pick or 0, force, remote_rows)
    c = change_of(ctx, wid)  # here, on an SSH host or in a pod: landed there
    ok = Approved({repo or "": at}, exactly=True) if at else Approved(reviewrounds.seen(ctx, wid))
    knobs = ctx.knobs()
    done = land(c, knobs, LandRequest(actor, ok, mode, into, repo))
    if pick is not None:
        said = ", ".join(f"{o['id']} {o['outcome']} (verify {o['verify']})" for o in others)
        append_journal(ctx, knobs, f"{actor}: picked attempt {wid} of {group}; the others: {said}")
        for o in others:
            if o["alive"]:  # its worktree then kept or cleaned as any stopped worker's
                steer(
                    ctx, {"action": "kill_worker", "id": o["id"], "reason": f"{wid} picked"}, None
                )
    if as_json:
        click.echo(jsonio.dumps(jsonio.plain(done), indent=2))
        return
    for each in done.repos or (done,):
        click.echo(_landed(each))


def _landed(done: Landed) -> str:
    of = f"repo {done.name}: " if done.name else ""
    if done.mode == "pr":
        return f"{of}pushed {done.branch} and opened a pull request into {done.into}: {done.url}"
    how = "fast-forwarded" if done.mode == "ff" else "merged"
    return (
        f"{of}landed worker {done.wid}: {done.branch} {how} into {done.into} at {done.commit[:12]}"
    )


# who lands: a human, also inside a worker's session (typed at its prompt, no agent typing since;
# the session's mark is act/reach.py's `note_typist`)


def at_prompt(fd: int = 0) -> bool:
    """This process is the foreground job of the terminal on `fd`: a line typed at a shell's
    prompt, not a command an agent's tool runs (its stdin is no terminal, or not in front)."""
    try:
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def land_actor(ctx: Ctx, actor: str, typed: bool) -> str:
    """Who lands, naming the worker session it runs in; inside one, refused unless a human
    typed it (`typed`: at the session's prompt) and no agent typed into the session since a
    human last did — landing is a human's act."""
    sid = ctx.env.get("LOOOP_SESSION_ID", "").strip()
    if not sid:
        return actor
    try:
        agent = Path(typed_mark(ctx.paths.data, sid)).read_text().strip() or "?"
    except (OSError, LooopError):
        agent = None
    if typed and agent is None:
        return f"{actor.removesuffix(')')} in worker {sid}'s session)"
    why = (
        f"an agent ({agent}) typed into it last"
        if agent is not None
        else "no one typed it at its prompt (an agent's tool runs it)"
    )
    raise LooopError(
        f"looop land refused inside worker {sid}'s session: {why}, and landing is a human's "
        "act — run it from your own shell"
    )
