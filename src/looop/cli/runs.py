"""`looop runs`: the decide runs archived in runs/, one shown, or replayed with another
decider (loop/replay.py). Its own family: the beat's run records it reads are no part of the
journal's or help's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from looop.cli.app import make_ctx, progress_line, show_rows
from looop.cli.commands import count
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.loop import replay
from looop.loop.beat import list_runs, show_run


@click.command(
    "runs",
    help="List recent decide runs, `runs show ID` for one, or `runs replay [ID…]` to send "
    "recorded prompts to another decider (--runner, --command, --playbook) and compare its "
    "moves with the recorded ones; nothing is executed.",
)
@click.argument("show", required=False, type=click.Choice(["show", "replay"]))
@click.argument("run_ids", nargs=-1)
@click.option("-n", "limit", type=count(1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--last", type=count(1), default=None, help="replay: the last N decides.")
@click.option("--runner", default=None, help="replay: a configured runner to decide.")
@click.option("--command", default=None, help="replay: a tick command line to decide.")
@click.option(
    "--playbook",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="replay: this file in place of the prompts' PLAYBOOK.",
)
def runs_cmd(
    show: str | None, run_ids: tuple[str, ...], limit: int, as_json: bool, **replay_opts: Any
) -> None:
    ctx = make_ctx(events_to=None)
    if show == "replay":  # replay_opts: last, runner, command, playbook
        _replay(ctx, run_ids, as_json, **replay_opts)
        return
    run_id = run_ids[0] if run_ids else None
    if len(run_ids) > 1:
        raise click.UsageError("`looop runs show` takes one run id — `looop runs` lists them")
    if show:
        if not run_id:
            raise click.UsageError("`looop runs show` needs a run id — `looop runs` lists them")
        info = show_run(ctx, run_id)
        if as_json:
            click.echo(jsonio.dumps(info, indent=2, sort_keys=True))
            return
        head = f"run {info['run_id']}  {info['status']}  {info.get('summary') or ''}".rstrip()
        body = info["output_text"].rstrip() or "(no output)"
        click.echo(f"{head}\nprompt:  {info['prompt']}\noutput:  {info['output']}\n\n{body}")
        return
    line = lambda r: f"{r['run_id']:<26} {r['status']:<9} {r.get('summary') or ''}".rstrip()  # noqa: E731
    show_rows(list_runs(ctx, limit), as_json, "no runs yet", line, indent=2, sort_keys=True)


def _replay(
    ctx: Ctx,
    ids: tuple[str, ...],
    as_json: bool,
    last: int | None,
    runner: str | None,
    command: str | None,
    playbook: str | None,
) -> None:
    """`looop runs replay`: the comparison as a table (progress on stderr), or `--json`."""
    if ids and last is not None:
        raise click.UsageError("give run ids or --last N, not both")
    if runner is not None and command is not None:
        raise click.UsageError("give --runner or --command, not both")
    if runner is None and command is None and playbook is None:
        raise click.UsageError(
            "say what decides instead: --runner R, --command CMD or --playbook FILE"
        )
    cfg = ctx.config()
    who = replay.runner_for(cfg, runner, command)
    text = None if playbook is None else Path(playbook).read_text(errors="replace")
    runs = replay.recorded_runs(ctx, ids, last)
    if not runs:
        raise LooopError("no decide runs to replay yet — `looop runs` lists them")
    rows = replay.replay(ctx, ctx.knobs(cfg), cfg, who, runs, text, progress_line())
    rep = replay.report(rows, who.name)
    click.echo(
        jsonio.dumps(rep, indent=2, sort_keys=True) if as_json else replay.table(rep), nl=as_json
    )
    if rep["failed"]:
        raise SystemExit(1)
