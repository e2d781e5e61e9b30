"""`looop mcp --worker`: the worker contract (ask, claim, unclaim, tell, told, cost report) as
MCP tools, for the agent CLI inside one worker (workers/mcpwire.py wires it into the CLI's own
MCP config at start).

It speaks only as the worker in its LOOOP_SESSION_ID, and each tool runs the same verb the
shell contract runs, through the same "$LOOOP_BIN": on this machine that is looop itself; in a
sandbox, the same looop under the same walls; away from home, the relay or the per-worker
token's call home. So the rules are those of the shell contract, and an argument naming
another worker is refused here by the per-worker token's own rule (remote/answer.as_self)
before anything runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from looop import __version__
from looop.core.errors import LooopError
from looop.human.tellbox import AskError, check_worker
from looop.remote.answer import as_self
from looop.web.mcpserver import LooopServer

NAME = "looop"  # the tools show as mcp__looop__claim and the like
MAX_OUTPUT = 64 << 10  # characters of a verb's answer handed back
ACT = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
INSTRUCTIONS = (
    "looop's worker contract for worker {wid}: ask a human and wait (ask), take and release "
    "a shared lease (claim, unclaim), message another worker (tell), read steering left for "
    "you (told), report what you spent (cost_report). Every call acts as {wid} only."
)


class WorkerIdError(LooopError):
    """No worker to speak as: not inside a worker, or a bad id in LOOOP_SESSION_ID."""


def own_id(env: Mapping[str, str]) -> str:
    """The worker this server speaks as: $LOOOP_SESSION_ID, checked as the contract verbs do."""
    wid = env.get("LOOOP_SESSION_ID", "").strip()
    if not wid:
        raise WorkerIdError(
            "mcp --worker: LOOOP_SESSION_ID is not set — it serves the contract of the "
            "worker it runs in; looop sets it when it starts a worker"
        )
    if wid == "pulse":
        raise WorkerIdError("mcp --worker: `pulse` is the control loop, not a worker")
    try:
        return check_worker(wid, "LOOOP_SESSION_ID")
    except AskError as e:
        raise WorkerIdError(f"mcp --worker: {e}") from None


def refusal(argv: list[str], wid: str) -> str | None:
    """Why `argv` would speak for someone other than `wid` (None: it speaks as `wid`)."""
    if argv[:2] == ["cost", "report"] and argv[3:4] != [wid]:
        return f"worker {wid} may report only its own cost, not {argv[3]!r}'s"
    return as_self(argv, wid)


def _line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[-3:])


async def run_verb(tool: str, argv: list[str], wid: str, bin_path: str, env: dict[str, str]) -> str:
    """The verb's stdout as `wid`, or its refusal (another worker's id; a non-zero exit) as
    the tool's error."""
    why = refusal(argv, wid)
    if why is not None:
        raise ToolError(f"{tool}: {why}")
    proc = await asyncio.create_subprocess_exec(
        bin_path,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:  # the agent gave up on the call: so does the verb
        if proc.returncode is None:
            proc.kill()
        raise
    said = out.decode("utf-8", "replace")[:MAX_OUTPUT]
    if proc.returncode != 0:
        why = _line(err.decode("utf-8", "replace")) or _line(said) or "no reason given"
        raise ToolError(f"{tool}: {why} (exit {proc.returncode})")
    return said.rstrip("\n")


Run = Callable[[str, list[str]], Awaitable[str]]  # (tool, argv) -> the verb's answer
Mine = Callable[[str | None], str]  # a tool's `worker` argument -> the id it speaks as


def build_worker_server(env: Mapping[str, str], bin_path: str) -> MCPServer[Any]:
    """The server for the worker in env's LOOOP_SESSION_ID (WorkerIdError when there is
    none); its verbs run as `bin_path` with env."""
    wid = own_id(env)
    child = dict(env)
    server = LooopServer(
        name=NAME,
        version=__version__,
        instructions=INSTRUCTIONS.format(wid=wid),
        log_level="WARNING",
    )

    def mine(worker: str | None) -> str:
        return wid if worker is None or not worker.strip() else worker.strip()

    async def run(tool: str, argv: list[str]) -> str:
        return await run_verb(tool, argv, wid, bin_path, child)

    _talk_tools(server, run, mine)
    _lease_and_cost_tools(server, run, mine, wid, env.get("LOOOP_RUNNER", "").strip())
    return server


def _talk_tools(server: MCPServer[Any], run: Run, mine: Mine) -> None:
    @server.tool(annotations=ACT)
    async def ask(
        prompt: str,
        options: list[str] | None = None,
        ref: str | None = None,
        worker: str | None = None,
    ) -> str:
        """Ask a human one clear question and wait for the answer (it may take hours); returns
        only the answer. options: the choices the human picks from (e.g. ["yes", "no"])."""
        argv = ["ask", mine(worker), "--prompt", prompt]
        if options:
            argv += ["--options", ",".join(o.strip() for o in options)]
        if ref:
            argv += ["--ref", ref]
        return await run("ask", argv)

    @server.tool(annotations=ACT)
    async def tell(worker: str, message: str) -> str:
        """Queue a message for another live worker; it reads it with its own told."""
        said = await run("tell", ["tell", worker, message])
        return said or f"told {worker}"

    @server.tool(annotations=ACT)
    async def told(worker: str | None = None) -> str:
        """Steering the human or the pulse left for you since you last looked (empty: none)."""
        return await run("told", ["told", mine(worker)])


def _lease_and_cost_tools(
    server: MCPServer[Any], run: Run, mine: Mine, wid: str, runner: str
) -> None:
    default_runner = runner or "custom"  # a custom worker line names no preset

    @server.tool(annotations=ACT)
    async def claim(name: str, worker: str | None = None) -> str:
        """Take the shared lease `name` before using what it guards; refused when someone live
        holds it (then do not proceed). Release it with unclaim when done."""
        said = await run("claim", ["claim", name, "--session", mine(worker)])
        return said or f"{wid} holds {name}"

    @server.tool(annotations=ACT)
    async def unclaim(name: str, worker: str | None = None) -> str:
        """Release the lease `name` you hold."""
        said = await run("unclaim", ["unclaim", name, "--session", mine(worker)])
        return said or f"{wid} released {name}"

    @server.tool(annotations=ACT)
    async def cost_report(usd: float, runner: str | None = None, worker: str | None = None) -> str:
        """Report what this worker spent, in US dollars, before you finish."""
        if not usd >= 0:
            raise ToolError("cost_report: usd must be a number of dollars, 0 or more")
        argv = ["cost", "report", "session", mine(worker), runner or default_runner, f"{usd:.6f}"]
        said = await run("cost_report", argv)
        return said or f"{wid} reported ${usd:.2f}"


def serve_worker_stdio(env: Mapping[str, str], bin_path: str) -> None:
    build_worker_server(env, bin_path).run("stdio")
