"""`looop web`: the dashboard and JSON API of this data dir (the web room loads only here)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from looop.cli.app import make_ctx
from looop.core.proctitle import show_role
from looop.core.webconfig import door_limits, web_settings
from looop.home.errors import LooopError
from looop.seed import ensure_data_dir
from looop.web import server
from looop.web.daemon import link, running


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
