"""`looop diff` (and `worker diff`): a worker's change as git shows it, read where its checkouts
are. Its own family: reading a change loads none of a worker start's machinery."""

from __future__ import annotations

import subprocess
import sys

import click

from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.sessions import far_worker
from looop.workers import treework
from looop.workers.backend import Backend
from looop.workers.ids import normalise_target
from looop.workers.treerecord import load_all


@click.command(
    "diff",
    help="Show worker ID's changes (git diff): what it committed on its branch since it "
    "started, its uncommitted edits and its new files; with OTHER, where the two branches "
    "differ (two attempts: ID.1 ID.3).",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.argument("other", required=False, shell_complete=idcomplete.workers)
@click.option("--stat", is_flag=True, help="Only the files changed and how much (git --stat).")
def diff_cmd(worker_id: str, other: str | None, stat: bool) -> None:
    ctx = make_ctx(events_to=None)
    wid = normalise_target(worker_id)
    extra = ("--stat",) if stat else ()
    if other is not None:
        _git_runs(treework.between(ctx, wid, normalise_target(other), extra))
        return
    far = far_worker(ctx, wid)  # on an SSH host the verb runs there and this does not return
    if far is not None:  # in a pod: read there, where its clones are
        _pod_diff(far, wid, stat)
        return
    if stat and len(load_all(ctx, wid)) > 1:  # git's own stat names no repository
        click.echo(treework.render_stat(treework.counted(ctx, wid)))
        return
    _git_runs(treework.diff_runs(ctx, wid, extra))


def _git_runs(runs: list[tuple[list[str], dict[str, str]]]) -> None:
    for argv, env in runs:
        sys.stdout.flush()
        try:
            code = subprocess.run(argv, env=env, check=False).returncode
        except FileNotFoundError:
            raise click.ClickException("git is not on PATH — install git") from None
        if code > 1:  # 1 is `git diff --no-index` saying the files differ
            raise SystemExit(code)


def _pod_diff(b: Backend, wid: str, stat: bool) -> None:
    """A pod worker's diff, or (--stat) its files and counts as its review reads them."""
    if not stat:
        got = b.diff(wid)
        click.echo(got["diff"], nl=False)
        if got.get("cut"):
            click.echo("… (cut: a long diff)")
        return
    r = b.review(wid).to_json()
    for each in r.get("repos") or [r]:
        prefix = f"{each['name']}/" if len(r.get("repos") or []) > 1 else ""
        for f in each.get("files") or []:
            counts = "binary" if f.get("binary") else f"+{f['added']} -{f['removed']}"
            click.echo(f" {prefix}{f['path']} | {counts}")
