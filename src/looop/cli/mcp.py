"""`looop mcp`: looop over the Model Context Protocol on stdin/stdout (web/mcpserver.py and the
SDK load only then; `--worker`'s web/mcpworker.py speaks the protocol without the SDK)."""

from __future__ import annotations

import click

from looop.cli.app import make_ctx
from looop.web import mcp_sdk
from looop.web.mcpworker import serve_worker_stdio
from looop.workers.mcpwire import settings


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
        # "$LOOOP_BIN": away from home the relay or the call home, as the shell contract;
        # no LOOOP_SESSION_ID is WorkerIdError, one line from the CLI
        serve_worker_stdio(ctx.env, ctx.env.get("LOOOP_BIN") or ctx.bin)
        return
    if not allow_actions:
        allow_actions = settings(ctx.config()).allow_actions
    mcp_sdk("looop mcp").serve_stdio(ctx, allow_actions)
