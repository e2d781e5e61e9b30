"""`looop mcp --worker`: the worker contract (ask, claim, unclaim, tell, told, cost report) as
MCP tools, for the agent CLI inside one worker (workers/mcpwire.py wires it into the CLI's own
MCP config at start).

It speaks only as the worker in its LOOOP_SESSION_ID, and each tool runs the same verb the
shell contract runs, through the same "$LOOOP_BIN": on this machine that is looop itself; in a
sandbox, the same looop under the same walls; away from home, the relay or the per-worker
token's call home. So the rules are those of the shell contract, and an argument naming
another worker is refused here by the per-worker token's own rule (core/contract.as_self)
before anything runs.

It speaks MCP's stdio transport itself (newline-delimited JSON-RPC, the initialize
handshake, tools only) rather than through the SDK that `looop mcp` is built on: a server
doing nothing on the SDK takes about 1 s to answer and 70 MB, paid by every wired worker at
each start while its agent CLI waits for the tools; this needs `json` and `asyncio`, answers
in about 0.1 s and holds 25 MB (bench/bench_mcp.py). The SDK's own client drives it in the
tests (tests/integration/test_mcp_worker.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import looop
from looop.contract.answering import as_self
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.human.tellbox import AskError, check_worker

NAME = "looop"  # the tools show as mcp__looop__claim and the like
MAX_OUTPUT = 64 << 10  # characters of a verb's answer handed back
MAX_LINE = 16 << 20  # bytes of one JSON-RPC message read from the agent CLI
# the initialize handshake's revisions, oldest first; a client asking another gets the newest
VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
ACT = {"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}
INSTRUCTIONS = (
    "looop's worker contract for worker {wid}: ask a human and wait (ask), take and release "
    "a shared lease (claim, unclaim), message another worker (tell), read steering left for "
    "you (told), report what you spent (cost_report). Every call acts as {wid} only."
)
# JSON-RPC error codes
PARSE_ERROR, INVALID_REQUEST, NO_METHOD, INVALID_PARAMS = -32700, -32600, -32601, -32602


class WorkerIdError(LooopError):
    """No worker to speak as: not inside a worker, or a bad id in LOOOP_SESSION_ID."""


class ToolError(Exception):
    """A tool's refusal, handed back to the agent as the tool's error (one line)."""


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


# ------------------------------------------------------------------ the tools

Run = Callable[[str, list[str]], Awaitable[str]]  # (tool, argv) -> the verb's answer
Handler = Callable[[dict[str, Any]], Awaitable[str]]

STRING: dict[str, Any] = {"type": "string"}
OPTIONAL_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
OPTIONAL_STRINGS: dict[str, Any] = {
    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
}
NUMBER: dict[str, Any] = {"type": "number"}
WORKER_ARG = "worker"  # each tool's optional id of the worker it acts as: only its own


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    params: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    handler: Handler

    def listing(self) -> dict[str, Any]:
        schema = {"type": "object", "properties": self.params, "required": list(self.required)}
        return {"name": self.name, "description": self.description, "inputSchema": schema,
                "annotations": ACT}  # fmt: skip

    def checked(self, arguments: object) -> dict[str, Any]:
        """The arguments, each of its declared type; anything else a one-line refusal naming
        the arguments that are wrong."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolError(f"{self.name}: bad arguments: an object of named arguments is needed")
        wrong = [f"'{k}' is not an argument" for k in arguments if k not in self.params]
        wrong += [f"'{k}' is required" for k in self.required if arguments.get(k) is None]
        for key, value in arguments.items():
            spec = self.params.get(key)
            if spec is None or value is None:
                continue
            if not _fits(spec, value):
                shape = {"string": "a string", "number": "a number"}.get(_kind(spec))
                wrong.append(f"'{key}' must be {shape or 'a list of strings'}")
        if wrong:
            known = ", ".join(self.params)
            raise ToolError(f"{self.name}: bad arguments: {'; '.join(wrong)} (takes {known})")
        return arguments


def _kind(spec: dict[str, Any]) -> str:
    return str(next(s for s in spec.get("anyOf", [spec]) if s.get("type") != "null")["type"])


def _fits(spec: dict[str, Any], value: object) -> bool:
    kind = _kind(spec)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


ME: dict[str, dict[str, Any]] = {WORKER_ARG: OPTIONAL_STRING}
# name, description, arguments, required: what tools/list says of each tool
SPECS: tuple[tuple[str, str, dict[str, dict[str, Any]], tuple[str, ...]], ...] = (
    ("ask", "Ask a human one clear question and wait for the answer (it may take hours); "
     "returns only the answer. options: the choices the human picks from (e.g. "
     '["yes", "no"]).',
     {"prompt": STRING, "options": OPTIONAL_STRINGS, "ref": OPTIONAL_STRING, **ME}, ("prompt",)),
    ("tell", "Queue a message for another live worker; it reads it with its own told.",
     {"worker": STRING, "message": STRING}, ("worker", "message")),
    ("told", "Steering the human or the pulse left for you since you last looked (empty: "
     "none).", dict(ME), ()),
    ("claim", "Take the shared lease `name` before using what it guards; refused when someone "
     "live holds it (then do not proceed). Release it with unclaim when done.",
     {"name": STRING, **ME}, ("name",)),
    ("unclaim", "Release the lease `name` you hold.", {"name": STRING, **ME}, ("name",)),
    ("cost_report", "Report what this worker spent, in US dollars, before you finish.",
     {"usd": NUMBER, "runner": OPTIONAL_STRING, **ME}, ("usd",)),
)  # fmt: skip


def worker_tools(wid: str, runner: str, run: Run) -> list[Tool]:
    """The contract's tools for `wid`, each running its verb through `run`."""
    handlers = _handlers(wid, runner, run)
    return [Tool(*spec, handlers[spec[0]]) for spec in SPECS]


def _handlers(wid: str, runner: str, run: Run) -> dict[str, Handler]:
    def mine(args: dict[str, Any]) -> str:
        worker = args.get(WORKER_ARG)
        return wid if not isinstance(worker, str) or not worker.strip() else worker.strip()

    async def ask(args: dict[str, Any]) -> str:
        argv = ["ask", mine(args), "--prompt", args["prompt"]]
        if args.get("options"):
            argv += ["--options", ",".join(o.strip() for o in args["options"])]
        if args.get("ref"):
            argv += ["--ref", args["ref"]]
        return await run("ask", argv)

    async def tell(args: dict[str, Any]) -> str:
        said = await run("tell", ["tell", args["worker"], args["message"]])
        return said or f"told {args['worker']}"

    async def told(args: dict[str, Any]) -> str:
        return await run("told", ["told", mine(args)])

    async def claim(args: dict[str, Any]) -> str:
        said = await run("claim", ["claim", args["name"], "--session", mine(args)])
        return said or f"{wid} holds {args['name']}"

    async def unclaim(args: dict[str, Any]) -> str:
        said = await run("unclaim", ["unclaim", args["name"], "--session", mine(args)])
        return said or f"{wid} released {args['name']}"

    async def cost_report(args: dict[str, Any]) -> str:
        usd = float(args["usd"])
        if not usd >= 0:
            raise ToolError("cost_report: usd must be a number of dollars, 0 or more")
        used = args.get("runner") or runner or "custom"  # a custom worker line names no preset
        argv = ["cost", "report", "session", mine(args), used, f"{usd:.6f}"]
        said = await run("cost_report", argv)
        return said or f"{wid} reported ${usd:.2f}"

    return {f.__name__: f for f in (ask, tell, told, claim, unclaim, cost_report)}


# ------------------------------------------------------------------ the protocol


class WorkerServer:
    """MCP over stdio for one worker: requests answered in the order their work ends (an
    `ask` waits for hours while other calls go on); a cancelled call's verb is killed."""

    def __init__(self, wid: str, tools: list[Tool], out: BinaryIO) -> None:
        self.wid = wid
        self.tools = {t.name: t for t in tools}
        self.out = out
        self.calls: dict[object, asyncio.Task[None]] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(jsonio.dumps(message, ensure_ascii=False).encode() + b"\n")
        self.out.flush()

    def answer(self, rid: object, result: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": rid, "result": result})

    def error(self, rid: object, code: int, message: str) -> None:
        self.send({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})

    def handle(self, raw: bytes) -> None:
        """One line from the agent CLI."""
        try:
            msg = jsonio.loads(raw)
        except ValueError:
            self.error(None, PARSE_ERROR, "not JSON: one JSON-RPC message per line")
            return
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            self.error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
            return
        method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if not isinstance(method, str):
            return  # a response to a request this server never sends
        if "id" not in msg:  # a notification: only a cancellation needs acting on
            if method == "notifications/cancelled" and isinstance(params, dict):
                task = self.calls.pop(params.get("requestId"), None)
                if task is not None:
                    task.cancel()
            return
        if not isinstance(params, dict):
            self.error(rid, INVALID_PARAMS, f"{method}: params must be an object")
        elif method == "initialize":
            self.answer(rid, self.hello(params))
        elif method == "ping":
            self.answer(rid, {})
        elif method == "tools/list":
            self.answer(rid, {"tools": [t.listing() for t in self.tools.values()]})
        elif method == "tools/call":
            self.call(rid, params)
        else:
            self.error(rid, NO_METHOD, f"{method}: not served (this server has tools only)")

    def hello(self, params: dict[str, Any]) -> dict[str, Any]:
        asked = params.get("protocolVersion")
        return {
            "protocolVersion": asked if asked in VERSIONS else VERSIONS[-1],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": NAME, "version": looop.__version__},
            "instructions": INSTRUCTIONS.format(wid=self.wid),
        }

    def call(self, rid: object, params: dict[str, Any]) -> None:
        tool = self.tools.get(str(params.get("name")))
        if tool is None:
            known = ", ".join(self.tools)
            self.error(rid, INVALID_PARAMS, f"no tool {params.get('name')!r} (tools: {known})")
            return
        self.calls[rid] = asyncio.ensure_future(self.run_call(rid, tool, params.get("arguments")))

    async def run_call(self, rid: object, tool: Tool, arguments: object) -> None:
        try:
            said, failed = await tool.handler(tool.checked(arguments)), False
        except ToolError as e:
            said, failed = str(e), True
        except asyncio.CancelledError:
            return  # cancelled by the client: it expects no answer
        finally:
            self.calls.pop(rid, None)
        self.answer(rid, {"content": [{"type": "text", "text": said}], "isError": failed})

    async def serve(self) -> None:
        read = await _line_reader()
        try:
            while raw := await read():
                if raw.strip():
                    self.handle(raw)
        finally:  # the agent CLI went away: so do the verbs still running for it
            for task in list(self.calls.values()):
                task.cancel()
            if self.calls:
                await asyncio.gather(*self.calls.values(), return_exceptions=True)


async def _line_reader() -> Callable[[], Awaitable[bytes]]:
    """Lines of stdin without blocking the calls in flight: a pipe (what an agent CLI gives)
    read by the event loop; anything else (a file, by hand) by a thread."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # not a pipe, socket or terminal

        async def by_thread() -> bytes:
            return await loop.run_in_executor(None, sys.stdin.buffer.readline, MAX_LINE)

        return by_thread
    return reader.readline


def build_worker_server(env: Mapping[str, str], bin_path: str, out: BinaryIO) -> WorkerServer:
    """The server for the worker in env's LOOOP_SESSION_ID (WorkerIdError when there is
    none); its verbs run as `bin_path` with env."""
    wid = own_id(env)
    child = dict(env)

    async def run(tool: str, argv: list[str]) -> str:
        return await run_verb(tool, argv, wid, bin_path, child)

    tools = worker_tools(wid, env.get("LOOOP_RUNNER", "").strip(), run)
    return WorkerServer(wid, tools, out)


def serve_worker_stdio(env: Mapping[str, str], bin_path: str) -> None:
    server = build_worker_server(env, bin_path, sys.stdout.buffer)
    asyncio.run(server.serve())
