"""`looop mcp`: looop over the Model Context Protocol on stdin/stdout (web/mcpserver.py and the
SDK load only here)."""

from __future__ import annotations

import click

from looop.cli.app import make_ctx


@click.command(
    "mcp",
    help="Serve looop to an agent over MCP on stdin/stdout: resources (state, goals, journal, "
    "runs, asks, workers, a worker's screen) and tools. Read-only unless --allow-actions.",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Let the acting tools (answer_ask, tell_worker, send_line, start_worker, kill_worker, "
    "write_goal, pause, resume) act, each journaled as done by mcp.",
)
def mcp_cmd(allow_actions: bool) -> None:
    ctx = make_ctx(events_to=None)  # stdout carries the protocol: no pulse lines on it
    # lazy: the MCP SDK loads only for this verb
    from looop.web.mcpserver import serve_stdio

    serve_stdio(ctx, allow_actions)
