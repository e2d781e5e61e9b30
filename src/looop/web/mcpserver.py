"""`looop mcp`: looop over the Model Context Protocol (the official SDK's MCPServer), for a
human's own agent. Resources read what the web API reads (web/reads.py: the CLI verbs'
own views); tools act through the web API's actions (web/actions.py: the executor, the
mailbox, the daemon), journaled and recorded as done by "mcp". Read-only unless the server
was started with `allow_actions`: an acting tool then refuses in one line saying how."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import ValidationError
from starlette.applications import Starlette

import looop
from looop.core.context import Ctx
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.web import actions, reads
from looop.web.reads import WebError

ACTOR = "mcp"
HTTP_PATH = "/mcp"  # on `looop web`, beside /api/v1
JOURNAL_LINES = 100
RUNS = 20
MAX_GOAL_BYTES = 256 << 10  # a goal file past this is shown cut
INSTRUCTIONS = (
    "looop runs a control loop (the pulse) and worker agents in terminals. Read looop://state "
    "first; looop://asks lists questions workers wait on (answer_ask answers one); "
    "looop://workers/{id}/review is a worker's change (review_comment, review_send answer "
    "it; landing is the human's). Acting "
    "tools change the loop and are journaled as done by mcp; they work only when the server "
    "was started with `looop mcp --allow-actions` (or the config's mcp.allow_actions)."
)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
ACT = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def _json(obj: object) -> str:
    return jsonio.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def _read(fn: Any, *args: Any) -> str:
    """A resource's JSON (or text); a refusal (no such worker, a host out of reach) in one
    line."""
    try:
        got = fn(*args)
        return got if isinstance(got, str) else _json(got)
    except WebError as e:
        raise ResourceError(e.message) from None
    except LooopError as e:
        raise ResourceError(str(e)) from None


def screen_text(ctx: Ctx, sid: str) -> str:
    """A worker's screen as plain text rows (what `looop shot` prints), its end trimmed."""
    shot = reads.screen(ctx, sid)
    rows = ["".join(str(r.get("t", "")) for r in row).rstrip() for row in shot["lines"]]
    while rows and not rows[-1]:
        rows.pop()
    state = "alive" if shot.get("alive") else "ended"
    return f"[{sid}: {state}]\n" + "\n".join(rows) + "\n"


class LooopServer(MCPServer[Any]):
    """The SDK's server, its refusal of bad arguments said in one line naming the fields
    (its own is pydantic's several-line report)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            cause = e.__cause__
            if not isinstance(cause, ValidationError):
                raise
            said = "; ".join(
                f"'{'.'.join(str(x) for x in err['loc'])}' {err['msg'].lower()}"
                for err in cause.errors()
            )
            raise ToolError(f"{name}: bad arguments: {said}") from None


def build_server(ctx: Ctx, allow_actions: bool) -> MCPServer[Any]:
    server = LooopServer(
        name="looop", version=looop.__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    _add_resources(server, ctx)
    act = _acting(ctx, allow_actions)
    _add_worker_tools(server, ctx, act)
    _add_loop_tools(server, act)
    _add_review(server, ctx, act)
    return server


def _add_resources(server: MCPServer[Any], ctx: Ctx) -> None:
    """The resources: the web API's reads."""

    @server.resource("looop://state", name="state", mime_type="application/json")
    def state() -> str:
        """The loop at a glance (`looop status --json`): pulse, last and next beat, breakers,
        spend, live workers, goals, asks."""
        return _read(reads.state, ctx)

    @server.resource("looop://goals", name="goals", mime_type="application/json")
    def goals_res() -> str:
        """Every goal (goals/ID.md) with its body."""
        by_id = sorted(reads.goals(ctx, MAX_GOAL_BYTES), key=lambda g: g["id"])
        return _json([{"id": g["id"], "body": g["text"]} for g in by_id])

    @server.resource("looop://journal", name="journal", mime_type="application/json")
    def journal() -> str:
        """The journal's last 100 lines (`looop journal --json`): every move and who made it."""
        return _read(reads.journal, ctx, JOURNAL_LINES)

    @server.resource("looop://runs", name="runs", mime_type="application/json")
    def runs() -> str:
        """The last 20 decide runs (`looop runs`)."""
        return _read(reads.runs, ctx, RUNS)

    @server.resource("looop://asks", name="asks", mime_type="application/json")
    def asks() -> str:
        """Pending asks, LIVE or STRANDED (`looop asks --json`)."""
        return _read(reads.asks, ctx)

    @server.resource("looop://needs", name="needs", mime_type="application/json")
    def needs() -> str:
        """What waits on a human: asks, approval prompts, idle input boxes, budgets, usage
        limits, held starts; each with the command that answers it (`looop needs --json`)."""
        return _read(reads.needs, ctx)

    @server.resource("looop://workers", name="workers", mime_type="application/json")
    def workers() -> str:
        """The pulse and every worker with health, ages and branch (`looop ls --all --json`)."""
        return _read(reads.sessions, ctx, True)

    @server.resource("looop://workers/{id}/screen", name="screen", mime_type="text/plain")
    def screen(id: str) -> str:
        """A worker's terminal screen as text (`looop shot ID`)."""
        return _read(screen_text, ctx, id)


def _add_review(server: MCPServer[Any], ctx: Ctx, act: Callable[..., dict[str, Any]]) -> None:
    """A worker's review, and the two tools that answer it. No tool lands a change: landing
    is a human's action (`looop land`, the web page, `looop watch`), and an agent is none."""

    @server.resource("looop://workers/{id}/review", name="review", mime_type="application/json")
    def review(id: str) -> str:
        """A repo worker's change for review (`looop review ID --json`): commits, files with
        their hunks, verify, its report, the comment rounds sent back."""
        return _read(reads.worker_review, ctx, id)

    @server.tool(annotations=ACT)
    def review_comment(
        id: str, text: str, file: str | None = None, line: int | None = None
    ) -> dict[str, Any]:
        """Draft a review comment on a worker's change (`looop review ID --comment FILE:LINE
        TEXT`; without file, `--comment-all TEXT`), kept until review_send delivers it."""
        body = {"text": text, "file": file or "", "line": line if file else None}
        return act("review_comment", actions.comment, id, body)

    @server.tool(annotations=ACT)
    def review_send(id: str) -> dict[str, Any]:
        """Send the drafted comments as one message (`looop review ID --send`): told to a live
        worker, or an ended one resumed on its conversation and told."""
        return act("review_send", actions.send, id, {})


def _acting(ctx: Ctx, allow_actions: bool) -> Callable[..., dict[str, Any]]:
    def act(tool: str, fn: Any, *args: Any) -> dict[str, Any]:
        """An acting tool's one way in: refused on a read-only server, else the web
        action with actor "mcp", a refusal (bad input, wrong state) as the tool's error."""
        if not allow_actions:
            raise ToolError(
                f"{tool} changes the loop, and this looop mcp server is read-only — "
                'start it with `looop mcp --allow-actions` (or set "mcp": {"allow_actions": '
                "true} in the config) to let it act"
            )
        try:
            fields = {"id": args[0], **args[1]} if args else {}  # (id, body) or nothing
            jsonio.check_values(fields, 8, allow_nul=False)  # as the web's bodies (web/app.py)
            got: dict[str, Any] = fn(ctx, *args, actor=ACTOR)
        except jsonio.UnsafeJSON as e:
            raise ToolError(f"{tool}: {e}") from None
        except WebError as e:
            raise ToolError(e.message) from None
        except LooopError as e:
            raise ToolError(str(e)) from None
        return got

    return act


def _add_worker_tools(server: MCPServer[Any], ctx: Ctx, act: Callable[..., dict[str, Any]]) -> None:
    """The tools on asks and workers, in the order a client lists them."""

    @server.tool(annotations=READ)
    def list_asks() -> list[dict[str, Any]]:
        """The asks workers wait on, each with its id, worker, prompt and options."""
        return reads.asks(ctx)

    @server.tool(annotations=ACT)
    def answer_ask(id: str, answer: str) -> dict[str, Any]:
        """Answer a pending ask (`looop answer ID TEXT`); its options, if any, are enforced."""
        return act("answer_ask", actions.answer_ask, id, {"answer": answer})

    @server.tool(annotations=ACT)
    def tell_worker(id: str, message: str) -> dict[str, Any]:
        """Queue a message for a live worker's next `looop told` (`looop tell ID MSG`)."""
        return act("tell_worker", actions.tell, id, {"message": message})

    @server.tool(annotations=ACT)
    def send_line(id: str, text: str, enter: bool = True) -> dict[str, Any]:
        """Type a line into a worker's terminal (`looop send ID TEXT`), Enter pressed unless
        enter is false."""
        return act("send_line", actions.send_text, id, {"text": text, "enter": enter})

    @server.tool(annotations=ACT)
    def start_worker(
        id: str,
        prompt: str,
        runner: str | None = None,
        repo: str | list[str] | None = None,
        branch: str | None = None,
        budget_usd: float | None = None,
        on_budget: str | None = None,
    ) -> dict[str, Any]:
        """Start a worker agent with this brief (`looop worker start ID PROMPT`): the
        config's runner unless named; in its own git worktree of `repo` when given, or one
        task across several repositories (`--repo A --repo B`) when `repo` is a list. With
        budget_usd, its spend (metered from its CLI's records each beat) is capped there:
        on_budget "pause" (default; `looop worker continue` lets it go on) or "stop"."""
        body = dict(prompt=prompt, runner=runner, repo=repo, branch=branch,
                    budget_usd=budget_usd, on_budget=on_budget)  # fmt: skip
        return act("start_worker", actions.start_worker, id, body)

    @server.tool(annotations=DESTROY)
    def kill_worker(id: str, reason: str = "") -> dict[str, Any]:
        """Stop a worker (`looop worker kill ID`)."""
        return act("kill_worker", actions.kill, id, {"reason": reason})


def _add_loop_tools(server: MCPServer[Any], act: Callable[..., dict[str, Any]]) -> None:
    """The tools on goals and the pulse."""

    @server.tool(annotations=ACT)
    def write_goal(id: str, body: str) -> dict[str, Any]:
        """Write goals/ID.md (`looop goal write ID BODY`): what the loop works towards."""
        return act("write_goal", actions.write_goal, id, {"body": body})

    @server.tool(annotations=ACT)
    def pause() -> dict[str, Any]:
        """Stop the pulse after its beat (`looop down --keep-workers`); workers keep running."""
        return act("pause", actions.pause)

    @server.tool(annotations=ACT)
    def resume() -> dict[str, Any]:
        """Start the pulse again (`looop up`)."""
        return act("resume", actions.resume)


def serve_stdio(ctx: Ctx, allow_actions: bool) -> None:
    build_server(ctx, allow_actions).run("stdio")


def mount_http(app: Starlette, ctx: Ctx, max_body: int) -> None:
    """The same server over streamable HTTP at /mcp, behind the web guard (the web token, the
    Host check): its holder may already act through /api/v1, so its tools act too, journaled
    as mcp. Stateless, JSON answers: no session the server must keep between calls."""
    server = build_server(ctx, allow_actions=True)
    inner = server.streamable_http_app(
        streamable_http_path=HTTP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=max_body,
        # the guard in front checks the Host; the SDK's own check knows no public name
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.extend(inner.router.routes)
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[Any]:
        async with outer(a) as state, server.session_manager.run():
            yield state

    app.router.lifespan_context = lifespan


class Mcp:
    """This module's servers, as looop.web.mcp_sdk() hands them out."""

    serve_stdio = staticmethod(serve_stdio)
    mount_http = staticmethod(mount_http)
