"""`looop wait`: until a session ends, or until the world needs a human. Its own family: the
world's watch it loads is no part of reading or driving one session (cli/sessionwatch.py)."""

from __future__ import annotations

import click

from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.sessions import duration_arg, target_sid, worker_way
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.stamps import utc_stamp_ms
from looop.loop.asks import wait_for_human
from looop.sessions.state import get_session, mark_dead
from looop.views.status import gather_status
from looop.views.statustext import add_v1_fields, print_status


@click.command(
    "wait",
    help="`looop wait ID`: block until a session ends (its exit code). "
    "`looop wait`: block until the world needs a human (exit 2: no pulse runs).",
)
@click.argument("sid", required=False, shell_complete=idcomplete.sessions)
@click.option("--timeout", default=None, help="Duration (default: forever).")
@click.option("--only-asks", is_flag=True, help="No id: wake only for a pending ask.")
@click.option("--actionable", is_flag=True, help="No id: wake for asks or a new journal line.")
@click.option("--json", "as_json", is_flag=True, help="No id: print what changed as JSON.")
def wait_cmd(
    sid: str | None, timeout: str | None, only_asks: bool, actionable: bool, as_json: bool
) -> None:
    ctx = make_ctx(events_to=None)
    if sid is None:
        poll = ctx.knobs().num("wait_poll_ms") / 1000
        code, changed, asks = wait_for_human(
            ctx, only_asks, actionable, duration_arg(timeout, None), poll
        )
        # as v1.0: the state object `looop state` prints, plus what changed
        st = gather_status(ctx.paths, ctx.env, ctx.clock)
        if as_json:
            full = {**add_v1_fields(st), "changed": changed}
            click.echo(jsonio.dumps(full, indent=2, sort_keys=True, ensure_ascii=False))
        else:
            click.echo(f"changed: [{', '.join(changed)}]")
            for a in asks:
                click.echo(f"ask {a.get('id')} from {a.get('worker')}: {a.get('prompt')}")
            click.echo()
            print_status(st, as_json=False)
        raise SystemExit(code)

    target = target_sid(sid, False)
    way = worker_way(ctx, target)
    code = way.wait(target, duration_arg(timeout, None))
    if code == 137 and way.kind == "local":  # a supervisor here that died leaves its mark here
        _report_dead(ctx, target)
    raise SystemExit(code)


def _report_dead(ctx: Ctx, sid: str) -> None:
    """A supervisor that died (SIGKILL, OOM) never wrote the end: record it, say so."""
    s = get_session(ctx.paths.data, sid)
    if s.dead:
        mark_dead(s.dir, utc_stamp_ms(ctx.clock.now()))
    elif not s.supervisor_died:
        return  # a real exit code 137 (the program was SIGKILLed under a live supervisor)
    click.echo(
        f"looop: session {sid} is dead: its supervisor died without recording an end (exit "
        f"unknown, reported as 137) — `looop log {sid}` shows its last output",
        err=True,
    )
