"""`looop web`: the dashboard and JSON API of this data dir (the web room loads only here), and
`looop mcp`: looop over the Model Context Protocol on stdin/stdout (web/mcpserver.py and the
SDK load only then; `--worker`'s web/mcpworker.py speaks the protocol without the SDK)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from looop.cli.app import make_ctx
from looop.core.proctitle import show_role
from looop.core.webconfig import door_limits, web_settings
from looop.home.errors import LooopError, need_extra
from looop.seed import ensure_data_dir
from looop.web.daemon import link, running
from looop.workers.mcpwire import settings


@click.command("web", help="Serve the dashboard and the JSON API (prints one URL with a token).")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8765).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--new-token", is_flag=True, help="Make a new token (old links stop working).")
@click.option(
    "--url", "url_only", is_flag=True, help="Print the running server's link (with its token)."
)
def web_cmd(
    host: str | None,
    port: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    new_token: bool,
    url_only: bool,
) -> None:
    ctx = make_ctx()

    if url_only:
        got = link(ctx)
        if got is None:
            raise LooopError(
                "no web server serves this data dir — start one with `looop web` or "
                "`looop up --web`"
            )
        click.echo(got)
        return

    rec = running(ctx)
    if rec is not None:
        # a second server would only fail on "address in use": the one up is what was wanted
        click.echo(
            f"looop web: already serving this data dir (pid {rec.get('pid')}); stop it first "
            "to change --host, --port or --new-token",
            err=True,
        )
        click.echo(link(ctx))
        return
    # lazy: starlette and uvicorn load only for this verb (`looop --help` loads this module)
    from looop.web import server

    try:
        web = web_settings(ctx.config().raw)
    except LooopError as e:
        click.echo(f"looop web: {e} — serving without the config's web settings", err=True)
        web = {}
    ensure_data_dir(ctx.paths)
    opt = server.Options(
        host=host or str(web.get("host") or "127.0.0.1"),
        port=port if port is not None else _config_port(web),
        tls_cert=tls_cert,
        tls_key=tls_key,
        new_token=new_token,
        public_url=web.get("url"),
        limits=server.Limits(*door_limits(web)),
    )
    show_role(f"looop: web {ctx.paths.data}")  # `ps -o args`; core/procstat.is_web knows it
    raise SystemExit(server.serve(ctx, opt, sys.stdout, sys.stderr))


def _config_port(web: dict[str, object]) -> int:
    """The config's port; 0 asks the system for a free one (it is not "unset")."""
    port = web.get("port")
    return port if isinstance(port, int) else 8765


@click.command(
    "mcp",
    help="Serve looop to an agent over MCP on stdin/stdout: resources (state, goals, journal, "
    "runs, asks, workers, a worker's screen) and tools. Read-only unless --allow-actions (or "
    'the config\'s "mcp": {"allow_actions": true}). With --worker: only the worker contract, '
    "as the worker in $LOOOP_SESSION_ID.",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Let the acting tools (answer_ask, tell_worker, send_line, start_worker, kill_worker, "
    "write_goal, pause, resume) act, each journaled as done by mcp.",
)
@click.option(
    "--worker",
    "worker",
    is_flag=True,
    help="Serve only the worker contract (ask, claim, unclaim, tell, told, cost_report) as "
    "the worker in $LOOOP_SESSION_ID; looop wires this into each worker's agent CLI.",
)
def mcp_cmd(allow_actions: bool, worker: bool) -> None:
    ctx = make_ctx(events_to=None)  # stdout carries the protocol: no pulse lines on it
    if worker:
        if allow_actions:
            raise click.UsageError(
                "--worker serves one worker's contract; --allow-actions is for a human's agent"
            )

        from looop.web.mcpworker import serve_worker_stdio  # lazy: the contract's MCP face

        # "$LOOOP_BIN": away from home the relay or the call home, as the shell contract;
        # no LOOOP_SESSION_ID is WorkerIdError, one line from the CLI
        serve_worker_stdio(ctx.env, ctx.env.get("LOOOP_BIN") or ctx.bin)
        return
    if not allow_actions:
        allow_actions = settings(ctx.config()).allow_actions
    need_extra("mcp", "looop mcp")
    from looop.web.mcpserver import serve_stdio  # lazy: the MCP SDK loads only here

    serve_stdio(ctx, allow_actions)
