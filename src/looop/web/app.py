"""The Starlette app: the guard in front of everything (web/requestguard.py), the /api/v1
routes, the dashboard page and its static files (shipped in the package, no build step); the
SSE streams are web/streams.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import looop
from looop.act import goalarchive
from looop.contract.answering import Refusal
from looop.contract.requests import Answerer, Home, Run
from looop.core.context import Ctx
from looop.core.webconfig import mcp_over_http
from looop.home import jsonio
from looop.home.errors import LooopError
from looop.remote import tokens
from looop.remote.hosts import remote_worker
from looop.spend.days import Held
from looop.web import actions, mcp_sdk, metrics, reads
from looop.web.auth import Guard
from looop.web.cache import Changes, Kept, Read, answer, cost_key, kept_fleet, seen
from looop.web.reads import WebError
from looop.web.requestguard import WORKER_TOKEN, GuardMiddleware, error_response
from looop.web.streams import NO_STORE, Hub, live_events, pulse_kept, screen_changes, sse

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 << 10  # a request body past this is refused (413) before it is read whole
CONTRACT_WAIT_S = 25.0  # a contract call waits this long for its run, then answers 202


def json_bytes(obj: object) -> bytes:
    """JSON as JSONResponse sends it."""
    return jsonio.dumps(
        obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def read_body(request: Request, cap: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object, refused (413) past `cap` bytes whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise WebError(413, f"request body over {cap >> 10} KiB")
    got = bytearray()
    try:
        async for chunk in request.stream():
            got += chunk
            if len(got) > cap:
                raise WebError(413, f"request body over {cap >> 10} KiB")
    except ClientDisconnect:  # gone mid-body (or cut at the door's deadline): no bug to log
        raise WebError(400, "the client went away before its body was whole") from None
    if not got.strip():
        return {}
    try:
        obj = jsonio.safe_loads(got.decode("utf-8"), allow_nul=False)
    except jsonio.UnsafeJSON as e:  # a NUL no file, argv or terminal carries: refused whole
        raise WebError(400, f"the JSON body: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise WebError(400, f"the body is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WebError(400, "the body must be a JSON object")
    return obj


def _int(request: Request, key: str, default: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise WebError(400, f"query '{key}' must be a whole number") from None


Handler = Callable[[Request], Awaitable[Response]]


async def _settled(run: Run, wait_s: float) -> bool:
    """Whether the run is done within `wait_s`, awaited without holding a thread."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutting down)
            loop.call_soon_threadsafe(done.set)

    stop = run.subscribe(wake)
    try:
        await asyncio.wait_for(done.wait(), wait_s)
        return True
    except TimeoutError:
        return False
    finally:
        stop()


# The routes that are one call, in match order: (method, path and its ?queries' defaults;
# summary; the call). A GET's call is given the path's parameter then the queries; a POST's,
# the parameter and the body (one without a parameter is given nothing).
_CALLS: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET /sessions/{sid}/screen", "A session's screen: rows of styled runs.", reads.screen),
    ("GET /sessions/{sid}/log?tail=200", "A session's output tail, ANSI stripped; ?tail=N.",
     reads.log),
    ("GET /journal?tail=100", "The journal's last lines (`journal --json`); ?tail=N.",
     reads.journal),
    ("GET /beats?limit=20", "The last beats, how each ended and why; ?limit=N.", reads.beats),
    ("GET /runs?limit=20", "Recent decide runs; ?limit=N.", reads.runs),
    ("GET /runs/{rid}", "One run with its output.", reads.run),
    ("GET /asks", "Pending asks, LIVE or STRANDED (`looop asks --json`).", reads.asks),
    ("GET /schedules", "Schedules with their next fire.", reads.schedule_rows),
    ("GET /goals", "The goals (goals/*.md) with their text, newest change first.", reads.goals),
    ("GET /goals/archived", "The archived goals, newest first, each with why it went.",
     goalarchive.archived),
    ("GET /sessions/{sid}/diff", "A repo worker's changes (`looop worker diff`).", reads.diff),
    ("GET /workers/{sid}/review", "A repo worker's change for review (`looop review`).",
     reads.worker_review),
    ("POST /asks/{aid}/answer", 'Answer a pending ask: {"answer"}.', actions.answer_ask),
    ("POST /sessions/{sid}/tell", 'Queue a message for a worker: {"message"}.', actions.tell),
    ("POST /sessions/{sid}/send", 'Type into a worker: {"text", "enter": true}.',
     actions.send_text),
    ("POST /sessions/{sid}/keys", 'Press named keys: {"keys": ["C-c"]}.', actions.send_keys),
    ("POST /sessions/{sid}/kill", 'Kill a worker: {"reason"}.', actions.kill),
    ("POST /goals/{gid}", 'Write goals/ID.md: {"body"}.', actions.write_goal),
    ("POST /workers/{wid}", 'Start a worker: {"prompt", "runner"?, "repo"? (absolute path or '
     'URL), "branch"?, "budget_usd"?, "on_budget"? ("pause" or "stop")}.', actions.start_worker),
    ("POST /pulse/pause", "Stop the pulse after its beat; workers keep running.", actions.pause),
    ("POST /pulse/resume", "Start the pulse again.", actions.resume),
    ("POST /workers/{wid}/review/comments", 'Draft a review comment: {"text", "file"?, "line"?} '
     "(no file: the whole change).", actions.comment),
    ("POST /workers/{wid}/review/send", "Send the drafted round (`--send`).", actions.send),
    ("POST /workers/{wid}/unstall", "Clear its stall: agents may start it.", actions.unstall),
    ("POST /workers/{wid}/continue", 'Let a worker at its budget go on: {"budget_usd"?} (none: '
     "its budget lifted).", actions.go_on),
    ("POST /workers/{wid}/land", 'Land the change (`looop land`) at the tip the review showed: '
     '{"at": tip (of several: {name: tip}), "mode"?: "ff"|"merge"|"pr", "into"?}; a branch '
     'that moved since is 409, as is a conflict, with "conflict": the comment to send back.',
     actions.land_change),
]  # fmt: skip
CONTRACT = (
    "A worker away from home speaks its contract (ask, claim, unclaim, tell, told, cost "
    'report): {"v": 1, "key", "worker", "argv", "stdin"} -> {"out", "err", "code"}, or '
    '202 {"pending": true} after ~25 s (POST again, same key). Only a worker\'s own token.'
)


def build_app(
    ctx: Ctx, guard: Guard, secure: bool = False, contract_wait_s: float = CONTRACT_WAIT_S
) -> Starlette:
    """The routes in match order (each /api/v1 one listed for the OpenAPI text), made an app
    behind its guard (and /mcp when configured)."""
    changes = Changes.open(ctx.paths, ctx.env)
    hub = Hub(ctx, changes=changes)  # the live stream woken by the same watches
    # the dashboard polls /state: built once per change, not once per request (web/cache.py)
    states = {
        e: Kept(lambda: (int(ctx.clock.now()), seen(ctx, changes)), partial(_state, ctx, e))
        for e in (False, True)
    }
    fleets = {e: kept_fleet(ctx, changes, e, json_bytes) for e in (False, True)}
    own = _own_routes(ctx, hub, states, fleets, contract_wait_s)
    calls = [(spec, summary, _one_call(ctx, spec, fn)) for spec, summary, fn in _CALLS]
    routes: list[Route | Mount] = []
    listed: list[tuple[str, str, str]] = []
    for spec, summary, fn in [*own, *calls]:
        method, path = spec.split("?")[0].split(" ")
        routes.append(Route(f"/api/v1{path}", _answered(fn), methods=[method]))
        listed.append((method, path, summary))

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc(listed))

    routes += [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/", _page(ctx, fleets[False]), methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        metrics.route(ctx),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with pulse_kept(ctx):  # a lost pulse `up` wants is brought back (streams.pulse_kept)
            yield
        await hub.close()
        if changes is not None:
            changes.close()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.hub = hub
    app.state.states = states  # the kept /state answers (a test counts their builds)
    app.state.fleets = fleets  # and /sessions' rows
    # the guard, with the metrics token's own door to GET /metrics (web/metrics.py)
    app.add_middleware(
        GuardMiddleware, guard=guard, secure=secure, metrics=metrics.metrics_token(ctx)
    )
    try:
        mcp = mcp_over_http(ctx.config().raw)
    except LooopError:  # a broken config serves without its web settings
        mcp = False
    if mcp:
        mcp_sdk('the config\'s "web": {"mcp": true}').mount_http(app, ctx, MAX_BODY)
    return app


def _answered(fn: Handler) -> Handler:
    """An /api/v1 route: a refusal is its status and one line; a bug one line to the client,
    the trace to stderr."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except WebError as e:
            return error_response(e.status, e.message, e.more)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            return error_response(500, f"internal error: {type(e).__name__}")

    return endpoint


def _one_call(ctx: Ctx, spec: str, fn: Callable[..., Any]) -> Handler:
    """fn(ctx, …) off the event loop, as _CALLS says; a POST's body read (and refused when
    bad) before anything runs."""
    method, path, queries = re.split(r"[ ?]", spec + "?")[:3]
    params = re.findall(r"{(\w+)}", path)

    async def handle(request: Request) -> Response:
        args: list[Any] = [str(request.path_params[p]) for p in params]
        if method == "POST":
            body = await read_body(request)
            args += [body] if params else []
        args += [_int(request, k, int(v)) for k, v in parse_qsl(queries)]
        return JSONResponse(await run_in_threadpool(fn, ctx, *args))

    return handle


def _own_routes(
    ctx: Ctx,
    hub: Hub,
    states: dict[bool, Kept[bytes]],
    fleets: dict[bool, Kept[Read]],
    contract_wait_s: float,
) -> list[tuple[str, str, Handler]]:
    """The /api/v1 routes that are more than one call: kept answers, streams, the contract."""
    costs = _kept_costs(ctx)

    async def state(request: Request) -> Response:
        # its workers from the fleet's one walk, shared with /sessions and /needs
        body = await states[e := _every(request)].get((await fleets[e].get()).light)
        return Response(body, media_type="application/json")

    async def sessions(request: Request) -> Response:
        return await answer(fleets[_every(request)], request, ctx.clock, json_bytes)

    async def needs(request: Request) -> Response:
        rows = (await fleets[False].get()).rows  # the fleet's one read, shared with /sessions
        return JSONResponse(await run_in_threadpool(reads.needs, ctx, rows))

    async def screen_stream(request: Request) -> Response:
        sid = str(request.path_params["sid"])
        first = await run_in_threadpool(reads.screen, ctx, sid)  # 404 before the stream starts
        return sse(screen_changes(request, ctx, sid, first))

    async def cost(request: Request) -> Response:
        body = await costs(_int(request, "days", 14))
        return Response(body, media_type="application/json")

    async def events(request: Request) -> Response:
        return sse(live_events(request, hub))

    answerer = Answerer(Home.of(ctx), remote_worker(ctx.paths.data), self_only=True)
    return [
        ("GET /state", "The loop at a glance (`looop status --json`); finished workers left "
         "out, ?all=1.", state),
        ("GET /sessions", "Pulse and workers with health (`looop ls --json`); ?all=1.", sessions),
        ("GET /needs", "What waits on a human, with its answer (`looop needs --json`).", needs),
        ("GET /sessions/{sid}/screen/stream", "The screen as SSE, sent when it changes.",
         screen_stream),
        ("GET /cost", "Spend today by worker and runner, and per day; ?days=N (14).", cost),
        ("GET /events", "Live events and journal lines (SSE).", events),
        ("POST /contract", CONTRACT, _contract(ctx, answerer, contract_wait_s)),
    ]  # fmt: skip


def _state(ctx: Ctx, every: bool, light: list[dict[str, Any]]) -> bytes:
    return json_bytes(reads.state(ctx, every, light))


def _kept_costs(ctx: Ctx) -> Callable[[int], Awaitable[bytes]]:
    """The dashboard reads /cost on every redraw: built again only when the ledger, its day
    totals or the local date moved (cache.cost_key), not once per request; and then from the
    day totals held since the last build, caught up with the rows appended since (one build
    at a time: they are caught up in place)."""
    kept: dict[int, Kept[bytes]] = {}
    held, lock = Held(), threading.Lock()

    def build(days: int) -> bytes:
        with lock:
            return json_bytes(reads.cost(ctx, days, held))

    def get(days: int) -> Awaitable[bytes]:
        if days not in kept:
            if len(kept) >= 16:
                kept.clear()  # a client walking every ?days= keeps no more than a few
            kept[days] = Kept(lambda: cost_key(ctx), lambda: build(days))
        return kept[days].get()

    return get


def _every(request: Request) -> bool:
    return request.query_params.get("all", "") in ("1", "true")


def _contract(ctx: Ctx, answerer: Answerer, wait_s: float) -> Handler:
    async def contract(request: Request) -> Response:
        token = request.scope.get(WORKER_TOKEN)
        if not isinstance(token, str):
            raise WebError(
                401, "the contract takes a worker's own token (LOOOP_HOME_TOKEN), not the human's"
            )
        body = await read_body(request)
        worker = body.get("worker")
        if not isinstance(worker, str) or not worker:
            raise WebError(400, "the request names no worker")
        if not await run_in_threadpool(tokens.check, ctx.paths, worker, token):
            raise WebError(401, f"this token is not worker {worker[:64]!r}'s (or it was revoked)")
        try:
            req = await run_in_threadpool(answerer.check, body)
        except Refusal as e:
            raise WebError(e.status, e.message) from None
        run = await run_in_threadpool(answerer.start, req)
        if not await _settled(run, wait_s):
            return JSONResponse({"pending": True}, status_code=202)
        return JSONResponse(run.answer)

    return contract


def openapi_doc(listed: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The web API's own description (GET /api/v1/openapi.json), drawn from the routes as
    they are declared, so it never lists a route that is not served."""
    paths: dict[str, Any] = {}
    for method, path, summary in listed:
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)
        ]
        op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "ok"}}}
        if params:
            op["parameters"] = params
        if method == "POST":
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(f"/api/v1{path}", {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "looop web API", "version": f"1 (looop {looop.__version__})"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, f"no such path {request.url.path[:200]}")


def _page(ctx: Ctx, fleet: Kept[Read]) -> Handler:
    """The dashboard's page with the fleet's rows in it, read as /sessions reads them (one
    kept read, and its ETag): the page draws its fleet as it starts, not after the live stream
    opened and a round of reads came back. What comes before the rows is sent at once, so the
    browser fetches the styles and scripts while the fleet is read."""
    head, tail = (STATIC / "index.html").read_bytes().split(b"<!-- fleet -->")

    async def page() -> AsyncIterator[bytes]:
        yield head
        with contextlib.suppress(LooopError, OSError):  # unread: the page asks /sessions itself
            got = await fleet.get()
            rows = got.body(ctx.clock.now(), json_bytes).replace(b"<", b"\\u003c")  # no </script>
            held = f"<script type=application/json id=fleet-read data-tag='{got.tag}'>"
            yield held.encode() + rows + b"</script>"
        yield tail

    async def index(request: Request) -> Response:
        return StreamingResponse(page(), media_type="text/html", headers=NO_STORE)

    return index


async def favicon(request: Request) -> Response:
    """Browsers ask /favicon.ico before reading the page's icon link: the same SVG."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
