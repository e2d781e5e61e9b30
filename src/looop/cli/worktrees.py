"""`looop worktrees`: the git worktrees of workers that no longer run — where each is, its
branch, whether it holds uncommitted work, how long it has been kept and when it expires
(workers/kepttrees.py states the policy)."""

from __future__ import annotations

import click

from looop.cli.app import make_ctx
from looop.home import jsonio
from looop.views.beatlog import relative
from looop.workers.kepttrees import kept_trees


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
    if as_json:
        click.echo(jsonio.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no worktrees of workers that no longer run")
        return
    keep = knobs.num("worktree_keep_days")
    for r in rows:
        age = relative(-float(r["age_s"])) if isinstance(r["age_s"], int) else "—"
        exp = r["expires_at"]
        if isinstance(exp, int):
            ends = f"expires {relative(exp - now)}"
        elif r["state"] == "dirty":
            ends = "kept until its session is reaped"
        else:
            ends = "removed when its session is reaped"
        click.echo(f"{r['id']:<16} {r['state']:<10} {r['branch']:<24} kept {age:<10} {ends}")
        click.echo(f"  {r['path']}")
    click.echo(
        f"a dirty worktree is kept {keep} days (worktree_keep_days), warned 2 days before, "
        "then its work is saved as a patch under <data>/worktrees/ and it is removed"
    )
