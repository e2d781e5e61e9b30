"""`looop worker start|list|kill`, `looop ls`, `looop kill`."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import click

from looop.act.decision import MAX_BUDGET_USD
from looop.act.moves.far import backend_for, continue_worker
from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.needs import list_cmd, worker_show
from looop.cli.params import JOURNAL_OPT, hidden_alias, words
from looop.cli.startwork import Start, start_worker_lines, started_ok
from looop.cli.steermove import kill_cmd
from looop.loop.ended import clear_stall
from looop.remote.engine import host_of
from looop.remote.hosts import KubeHost
from looop.remote.ssh.backend import forward
from looop.spend.spent import POLICIES
from looop.workers import diffstat, treework
from looop.workers.backend import Backend
from looop.workers.ids import normalise_target
from looop.workers.treerecord import load_all

worker_group = click.Group("worker", help="Start, list or kill workers (agents in PTY sessions).")


@worker_group.command(
    "start", help="Start worker ID with PROMPT (words joined by spaces, or - for stdin)."
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.argument("prompt", nargs=-1)
@click.option("--runner", default=None, help="A runner from the config (default: its default).")
@click.option(
    "--command",
    default=None,
    help="Replace the launch command for this worker; it must name {{prompt_file}}.",
)
@click.option(
    "--verify",
    default=None,
    help="A read-only check run once after it exits (inside its sandbox when it runs in one; "
    "on its host when it runs on an SSH host).",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="Run it inside srt's sandbox, or not (default: the config's `sandbox`).",
)
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="PATH|URL",
    help="Run it in its own git worktree of this repo (under the data dir), on its own branch; "
    "on an SSH host, a repository's path there or a URL it clones; on a Kubernetes host, the "
    "URL its pod clones. Given more than once (here only): one worktree of each, side by side "
    "in the worker's folder.",
)
@click.option(
    "--branch", default=None, metavar="NAME", help="Its checkout's branch (default looop/ID)."
)
@click.option(
    "--resume",
    is_flag=True,
    default=False,
    help="If its session dies without an end (reboot, crash), `looop up` starts it again on "
    "its agent conversation.",
)
@click.option(
    "--steerable",
    is_flag=True,
    default=False,
    help="Let decisions type into it, send it keys and restart it though it runs with fewer "
    "walls than the decider (unsandboxed while the decider is sandboxed).",
)
@click.option(
    "--host",
    default=None,
    metavar="NAME",
    help="Run it on this host (SSH or Kubernetes: looop host add), or `local`; default: the "
    "most room left.",
)
@click.option(
    "--budget",
    type=float,
    default=None,
    metavar="USD",
    help="Its spend ceiling, metered each beat from its CLI's own records (a custom "
    "--command: from what it reports with `looop cost report`).",
)
@click.option(
    "--on-budget",
    type=click.Choice(POLICIES),
    default="pause",
    show_default=True,
    help="At the budget: pause all it runs (`looop worker continue`) or stop it (worktree kept).",
)
@click.option(
    "--attempts",
    default=None,
    metavar="N|RUNNER,…",
    help="Start N workers ID.1…ID.N at the same task, each in its own worktree of --repo (or "
    "one per runner named); compare them with `looop review ID`, land one with --pick.",
)
@JOURNAL_OPT
def worker_start(
    worker_id: str,
    prompt: tuple[str, ...],
    sandbox: bool | None,
    repos: tuple[str, ...],
    budget: float | None,
    attempts: str | None,
    **opts: Any,
) -> None:
    ctx = make_ctx()

    if budget is not None and not (math.isfinite(budget) and 0 < budget <= MAX_BUDGET_USD):
        raise click.UsageError(
            f"--budget {budget:g}: give a positive amount in USD, at most "
            f"{MAX_BUDGET_USD:g} (e.g. --budget 5)"
        )
    start = Start(
        worker_id=worker_id,
        prompt=words(prompt),
        sandbox=None if sandbox is None else ("on" if sandbox else "off"),
        repo=repos[0] if repos else None,
        repos=repos if len(repos) > 1 else (),
        budget=budget,
        **opts,  # runner, command, verify, branch, resume, steerable, host, on_budget, journal
    )
    if attempts is not None:
        start.attempts = int(attempts) if attempts.strip().isdigit() else attempts.split(",")
    click.echo(start_worker_lines(start, ctx, started_ok), nl=False)


@worker_group.command(
    "continue",
    help="Let worker ID go on after it reached its budget: resumes a paused one, all it runs; "
    "--budget sets a new ceiling, else its budget is lifted.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.option("--budget", type=float, default=None, metavar="USD", help="Its new ceiling.")
def worker_continue(worker_id: str, budget: float | None) -> None:
    click.echo(continue_worker(make_ctx(), normalise_target(worker_id), budget))


@worker_group.command(
    "unstall",
    help="Clear worker ID's stall (it failed the same way again and again): the decider may "
    "start or restart it again, and its failure streak starts over.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
def worker_unstall(worker_id: str) -> None:
    ctx = make_ctx()
    wid = normalise_target(worker_id)
    rec = clear_stall(ctx, ctx.knobs(), wid, "cli")
    click.echo(f"worker {wid} is no longer stalled (it was: {rec.get('why')})")


@worker_group.command(
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
    if (ctx.paths.host_record(wid)).exists():
        h = host_of(ctx.paths.data, wid)
        if isinstance(h, KubeHost):  # read in its pod, where its clones are
            _pod_diff(backend_for(ctx, wid), wid, stat)
            return
        if h is not None:
            raise SystemExit(forward(ctx, wid, ["worker", "diff", wid, *(["--stat"] * stat)]))
    if stat and len(load_all(ctx, wid)) > 1:  # git's own stat names no repository
        click.echo(diffstat.render(diffstat.counted(ctx, wid)))
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
    r = b.review(wid)
    for each in r.get("repos") or [r]:
        prefix = f"{each['name']}/" if len(r.get("repos") or []) > 1 else ""
        for f in each.get("files") or []:
            counts = "binary" if f.get("binary") else f"+{f['added']} -{f['removed']}"
            click.echo(f" {prefix}{f['path']} | {counts}")


worker_group.add_command(kill_cmd)


worker_group.add_command(list_cmd, "list")
worker_group.add_command(worker_show)
hidden_alias(worker_group, list_cmd, "ls")  # `worker ls` as the manual says, one help row
