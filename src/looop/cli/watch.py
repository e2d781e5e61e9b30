"""`looop watch [ID] [-a]`: the full-screen view you can work from (Textual loads only here)."""

from __future__ import annotations

import sys

import click

from looop.act.moves.far import backend_for
from looop.cli import idcomplete
from looop.cli.app import make_ctx
from looop.cli.sessions import since_time
from looop.home.errors import LooopError
from looop.sessions.state import validate_id
from looop.tui.app import WatchApp
from looop.web.actions import Acting
from looop.workers.ids import strip_legacy_prefix


@click.command(
    "watch",
    help="Full-screen view: a session's terminal (a remote worker's screen, asked of its host) "
    "plus the pulse, next beat, spend, asks and worker health. One key acts (journaled as "
    "`watch:`): a answer an ask, s send a line, c Ctrl-C, k kill, p pause/resume, f follow; "
    "? lists every key.\n\nExample: looop watch w1",
)
@click.argument("sid", required=False, shell_complete=idcomplete.sessions)
@click.option("-a", "--all", "show_all", is_flag=True, help="List finished sessions too (Tab).")
@click.option(
    "-s",
    "--since",
    "since",
    default=None,
    metavar="D",
    help="Also list finished sessions heard from within D (30m, 12h, 1d) or since a time "
    "(2026-11-27T09:00).",
)
def watch_cmd(sid: str | None, show_all: bool, since: str | None) -> None:
    if show_all and since is not None:  # every finished session, or those of the last D: one
        raise click.UsageError("give --all or --since D, not both")
    ctx = make_ctx(events_to=None)
    since_s = None if since is None else ctx.clock.now() - since_time(since, ctx.clock)
    if sid is not None:
        sid = validate_id(strip_legacy_prefix(sid))
        backend_for(ctx, sid).known(sid)  # an unknown id fails here, before the screen
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise LooopError(
            "watch needs a terminal: for a snapshot use `looop shot ID`, "
            "to follow output `looop log -f ID`"
        )
    ctx.knobs()  # config warnings print now, before the screen is taken over
    ctx.events.warn_to = None

    WatchApp(ctx, sid, show_all, since_s, acts=Acting(ctx, "watch")).run()
