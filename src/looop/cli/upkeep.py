"""Upkeep verbs: `restart` a session (a worker on its recorded conversation), `prune` the
finished ones, list the `worktrees` finished workers left. Apart from `worker start`: a start
loads none of a resume's, a prune's or the kept worktrees' machinery."""

from __future__ import annotations

from typing import Any

import click

from looop.cli import idcomplete
from looop.cli.app import make_ctx, show_rows
from looop.cli.sessions import emit, far_worker, session_of
from looop.home.errors import LooopError
from looop.sessions.client import restart
from looop.sessions.state import KEPT, list_sessions, prune_aged
from looop.views.beatlog import relative
from looop.workers.kepttrees import kept_trees
from looop.workers.resume import restart_worker
from looop.workers.worktree import end_generation


@click.command(
    "restart",
    help="Restart a session's command (the log keeps growing); a worker with a recorded agent "
    "conversation starts again on it, dead or alive.",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--json", "as_json", is_flag=True)
def restart_cmd(sid: str, as_json: bool) -> None:
    ctx, target = session_of(sid, True)
    far = far_worker(ctx, target)  # a worker on an SSH host restarts there
    if far is not None:
        raise LooopError(
            f"worker {target} runs in a Kubernetes Job on host {far.host.name}: `looop restart` "
            f"does not reach it — kill it and start it again (`looop kill {target}`)"
        )
    done = restart_worker(ctx, ctx.knobs(), target)
    if done is not None:
        conv = done.get("conversation")
        emit(done, as_json, f"resumed {target}" + (f" on conversation {conv}" if conv else ""))
        return
    emit(restart(ctx.paths.data, target), as_json, f"restarting {sid}")


@click.command(
    "prune",
    help="Remove every finished worker session now (transcripts included); a stopped "
    "pulse's log is kept: it says why it stopped.",
)
@click.option("--dry-run", is_flag=True)
def prune_cmd(dry_run: bool) -> None:
    ctx = make_ctx(events_to=None)
    if dry_run:
        dead = [s.id for s in list_sessions(ctx.paths.data) if not s.alive and s.id not in KEPT]
        click.echo("would remove: " + (", ".join(dead) or "nothing"))
        return
    gone = prune_aged(ctx.paths.data, 0, ctx.clock.now())
    if gone:
        said = make_ctx()  # a kept worktree is said on stderr
        for sid in gone:
            end_generation(said, sid)  # its worktree removed (a dirty one kept and said)
    click.echo(f"pruned {len(gone)} session(s)" + (f": {', '.join(gone)}" if gone else ""))


@click.command(
    "worktrees",
    help="List the worktrees of workers that no longer run: id, path, branch, dirty or "
    "clean, kept for how long, when it expires (a dirty one is saved as a patch first).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def worktrees_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    knobs = ctx.knobs()
    now = ctx.clock.now()
    rows = [k.row(now) for k in kept_trees(ctx, knobs)]

    def line(r: dict[str, Any]) -> str:
        age = relative(-float(r["age_s"])) if isinstance(r["age_s"], int) else "—"
        exp = r["expires_at"]
        if isinstance(exp, int):
            ends = f"expires {relative(exp - now)}"
        elif r["state"] == "dirty":
            ends = "kept until its session is reaped"
        else:
            ends = "removed when its session is reaped"
        head = f"{r['id']:<16} {r['state']:<10} {r['branch']:<24} kept {age:<10}"
        return f"{head} {ends}\n  {r['path']}"

    empty = "no worktrees of workers that no longer run"
    if not show_rows(rows, as_json, empty, line, indent=2, ensure_ascii=False):
        return
    keep = knobs.num("worktree_keep_days")
    click.echo(
        f"a dirty worktree is kept {keep} days (worktree_keep_days), warned 2 days before, "
        "then its work is saved as a patch under <data>/worktrees/ and it is removed"
    )
