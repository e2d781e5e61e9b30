"""The Starlette app: the guard in front of everything, the /api/v1 routes, the dashboard page
and its static files (shipped in the package, no build step)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from looop import __version__
from looop.core import jsonsafe
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.webconfig import mcp_over_http
from looop.remote import tokens
from looop.remote.answer import Answerer, Refusal, Run, remote_worker
from looop.web import actions, metrics, reads
from looop.web.auth import Guard, cookie_name, token_ok
from looop.web.cache import Changes, Kept, Key, key_of, state_inputs
from looop.web.errors import WebError
from looop.web.events import Hub

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 << 10  # a request body past this is refused (413) before it is read whole
SCREEN_POLL_S = 0.25
REMOTE_POLL_S = 1.0  # a remote worker's screen costs its host a round trip a poll
REMOTE_ALIVE_EVERY = 5  # and whether it is still alive is asked every few looks only
PING_S = 15.0
SAFE = ("GET", "HEAD", "OPTIONS")
CONTRACT_PATH = "/api/v1/contract"
WORKER_TOKEN = "looop.worker_token"  # the scope key the guard leaves a worker's token under
CONTRACT_WAIT_S = 25.0  # a contract call waits this long for its run, then answers 202
# On every response: never framed by another page (clickjacking a Kill button), scripts and
# connections only from here, no referrer leaving with a URL.
HARDENING = [
    (
        b"content-security-policy",
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def json_bytes(obj: object) -> bytes:
    """JSON as JSONResponse sends it."""
    return json.dumps(
        obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class GuardMiddleware:
    """Host check (DNS rebinding) on every request; the token (query once, then the cookie,
    or a Bearer header) on all but the static files; the Origin on every state-changing call."""

    def __init__(self, app: ASGIApp, guard: Guard, secure: bool) -> None:
        self.app, self.guard, self.secure = app, guard, secure
        self.cookie = cookie_name(guard.port)

    async def __call__(self, scope: Scope, receive: Receive, outer: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, outer)
            return

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HARDENING]
            await outer(message)

        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.guard.host_ok(host):
            await _error(403, "this server does not answer to that Host name")(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/static/") or path == "/favicon.ico":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [None])[0]
        tok = self.guard.token
        by_query = given is not None and token_ok(given, tok)
        if by_query and path == "/":
            await self._hand_cookie(scope, receive, send)
            return
        bearer = headers.get("authorization", "")
        given_bearer = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
        if tokens.looks_scoped(given_bearer):
            # a worker's token: its own contract, and nothing else (the route checks whose)
            await self._worker(scope, receive, send, headers, host, str(given_bearer))
            return
        by_bearer = given_bearer is not None and token_ok(given_bearer, tok)
        by_cookie = token_ok(_cookie(headers, self.cookie), tok)
        if not (by_bearer or by_cookie or by_query):
            if path == "/" and scope["method"] in SAFE:
                page = "<!doctype html><title>looop</title><p>Open the address `looop web` printed (it carries the token).</p>"  # noqa: E501
                await HTMLResponse(page, status_code=401)(scope, receive, send)
                return
            await _error(401, "missing or wrong token — open the URL `looop web` printed")(
                scope, receive, send
            )
            return
        if scope["method"] not in SAFE and not (
            self.guard.origin_ok(headers.get("origin"), host)
            or (by_bearer and headers.get("origin") is None)
        ):
            await _error(403, "cross-origin request refused (Origin is not this server)")(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)

    async def _hand_cookie(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The token leaves the address bar and history at once; the cookie carries it on."""
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            self.cookie,
            self.guard.token,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )
        await resp(scope, receive, send)

    async def _worker(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Headers,
        host: str | None,
        token: str,
    ) -> None:
        if scope["path"] != CONTRACT_PATH or scope["method"] != "POST":
            await _error(401, f"a worker's token speaks only POST {CONTRACT_PATH}")(
                scope, receive, send
            )
            return
        origin = headers.get("origin")
        if origin is not None and not self.guard.origin_ok(origin, host):
            await _error(403, "cross-origin request refused (Origin is not this server)")(
                scope, receive, send
            )
            return
        scope[WORKER_TOKEN] = token
        await self.app(scope, receive, send)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


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
        obj = jsonsafe.loads(got.decode("utf-8"))
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


@dataclass
class Site:
    """One app being built: what its routes share, and its routes so far in match order
    (with each /api/v1 route's summary for the OpenAPI text)."""

    ctx: Ctx
    hub: Hub
    answerer: Answerer
    changes: Changes | None
    contract_wait_s: float
    routes: list[Route | Mount] = field(default_factory=list)
    listed: list[tuple[str, str, str]] = field(default_factory=list)

    def api(self, method: str, path: str, summary: str) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                try:
                    return await fn(request)
                except WebError as e:
                    return _error(e.status, e.message)
                except Exception as e:  # a bug: one line to the client, the trace to stderr
                    traceback.print_exc(file=sys.stderr)
                    return _error(500, f"internal error: {type(e).__name__}")

            self.routes.append(Route(f"/api/v1{path}", endpoint, methods=[method]))
            self.listed.append((method, path, summary))
            return fn

        return wrap

    def call(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """fn(ctx, *args) off the event loop: every read and action touches files."""
        return run_in_threadpool(fn, self.ctx, *args)


def build_app(
    ctx: Ctx, guard: Guard, secure: bool = False, contract_wait_s: float = CONTRACT_WAIT_S
) -> Starlette:
    """The app in steps: open what the routes share, register them in match order, then
    wrap the whole in its guard (and /metrics, /mcp when configured)."""
    site = _open_site(ctx, contract_wait_s)
    states = _kept_states(site)
    _session_reads(site, states)
    _history_reads(site)
    _page_reads(site.api, site.call)
    _live_reads(site)
    _actions(site)
    _contract(site)
    _pages(site)
    return _assemble(site, states, guard, secure)


def _open_site(ctx: Ctx, contract_wait_s: float) -> Site:
    return Site(
        ctx=ctx,
        hub=Hub(ctx),
        answerer=Answerer(ctx, remote_worker(ctx), self_only=True),
        changes=Changes.open(ctx.paths, ctx.env),
        contract_wait_s=contract_wait_s,
    )


def _kept_states(site: Site) -> dict[bool, Kept]:
    """The dashboard polls /state: built once per change, not once per request (web/cache.py)."""
    ctx, changes = site.ctx, site.changes

    def state_key() -> Key:
        if changes is not None:
            return (int(ctx.clock.now()), changes.now())
        return key_of(ctx.clock, state_inputs(ctx.paths, ctx.env))

    def kept_state(every: bool) -> Kept:

        def build() -> bytes:
            return json_bytes(reads.state(ctx, every))

        return Kept(state_key, build)

    return {False: kept_state(False), True: kept_state(True)}


def _sid(request: Request) -> str:
    return str(request.path_params["sid"])


def _every(request: Request) -> bool:
    return request.query_params.get("all", "") in ("1", "true")


def _session_reads(site: Site, states: dict[bool, Kept]) -> None:
    """The loop now: status, sessions, a session's screen and log."""
    api, call, ctx = site.api, site.call, site.ctx

    @api(
        "GET",
        "/state",
        "The loop at a glance (`looop status --json`); finished workers left out, ?all=1.",
    )
    async def state(request: Request) -> Response:
        body = await states[_every(request)].get()
        return Response(body, media_type="application/json")

    @api("GET", "/sessions", "Pulse and workers with health (`looop ls --json`); ?all=1.")
    async def sessions(request: Request) -> Response:
        return JSONResponse(await call(reads.sessions, _every(request)))

    @api("GET", "/sessions/{sid}/screen", "A session's screen: rows of styled runs.")
    async def screen(request: Request) -> Response:
        return JSONResponse(await call(reads.screen, _sid(request)))

    @api("GET", "/sessions/{sid}/screen/stream", "The screen as SSE, sent when it changes.")
    async def screen_stream(request: Request) -> Response:
        first = await call(reads.screen, _sid(request))  # 404 before the stream starts
        return _sse(_screens(request, ctx, _sid(request), first))

    @api("GET", "/sessions/{sid}/log", "A session's output tail, ANSI stripped; ?tail=N.")
    async def log(request: Request) -> Response:
        return JSONResponse(await call(reads.log, _sid(request), _int(request, "tail", 200)))


def _history_reads(site: Site) -> None:
    """What happened and what waits: journal, beats, runs, cost, asks, schedules."""
    api, call = site.api, site.call

    @api("GET", "/journal", "The journal's last lines (`journal --json`); ?tail=N.")
    async def journal(request: Request) -> Response:
        return JSONResponse(await call(reads.journal, _int(request, "tail", 100)))

    @api("GET", "/beats", "The last beats, how each ended and why; ?limit=N.")
    async def beats(request: Request) -> Response:
        return JSONResponse(await call(reads.beats, _int(request, "limit", 20)))

    @api("GET", "/runs", "Recent decide runs; ?limit=N.")
    async def runs(request: Request) -> Response:
        return JSONResponse(await call(reads.runs, _int(request, "limit", 20)))

    @api("GET", "/runs/{rid}", "One run with its output.")
    async def run(request: Request) -> Response:
        return JSONResponse(await call(reads.run, str(request.path_params["rid"])))

    @api("GET", "/cost", "Spend today by worker and runner, and per day; ?days=N (14).")
    async def cost(request: Request) -> Response:
        return JSONResponse(await call(reads.cost, _int(request, "days", 14)))

    @api("GET", "/asks", "Pending asks, LIVE or STRANDED (`looop asks --json`).")
    async def asks(request: Request) -> Response:
        return JSONResponse(await call(reads.asks))

    @api("GET", "/schedules", "Schedules with their next fire.")
    async def schedules(request: Request) -> Response:
        return JSONResponse(await call(reads.schedule_rows))


def _live_reads(site: Site) -> None:
    hub = site.hub

    @site.api("GET", "/events", "Live events and journal lines (SSE).")
    async def events(request: Request) -> Response:
        return _sse(_events(request, hub))


# (path, summary, action, the path's one parameter or None) for each POST
_POSTS: list[tuple[str, str, Callable[..., Any], str | None]] = [
    ("/asks/{aid}/answer", 'Answer a pending ask: {"answer"}.', actions.answer_ask, "aid"),
    ("/sessions/{sid}/tell", 'Queue a message for a worker: {"message"}.', actions.tell, "sid"),
    (
        "/sessions/{sid}/send",
        'Type into a worker: {"text", "enter": true}.',
        actions.send_text,
        "sid",
    ),
    ("/sessions/{sid}/keys", 'Press named keys: {"keys": ["C-c"]}.', actions.send_keys, "sid"),
    ("/sessions/{sid}/kill", 'Kill a worker: {"reason"}.', actions.kill, "sid"),
    ("/goals/{gid}", 'Write goals/ID.md: {"body"}.', actions.write_goal, "gid"),
    (
        "/workers/{wid}",
        'Start a worker: {"prompt", "runner"?, "repo"? (absolute path or URL), "branch"?, '
        '"budget_usd"?, "on_budget"? ("pause" or "stop")}.',
        actions.start_worker,
        "wid",
    ),
    (
        "/pulse/pause",
        "Stop the pulse after its beat; workers keep running.",
        actions.pause,
        None,
    ),
    ("/pulse/resume", "Start the pulse again.", actions.resume, None),
]


def _actions(site: Site) -> None:
    call = site.call

    def action(fn: Callable[..., Any], param: str | None) -> Handler:
        """A POST: its body read (and refused when bad) before anything runs, then the
        action with the path's one parameter and the body, or with nothing at all."""

        async def handle(request: Request) -> Response:
            body = await read_body(request)
            if param is None:
                return JSONResponse(await call(fn))
            return JSONResponse(await call(fn, str(request.path_params[param]), body))

        return handle

    for path, summary, fn, param in _POSTS:
        site.api("POST", path, summary)(action(fn, param))


def _contract(site: Site) -> None:
    ctx, answerer, wait_s = site.ctx, site.answerer, site.contract_wait_s

    @site.api(
        "POST",
        "/contract",
        "A worker away from home speaks its contract (ask, claim, unclaim, tell, told, cost "
        'report): {"v": 1, "key", "worker", "argv", "stdin"} -> {"out", "err", "code"}, or '
        '202 {"pending": true} after ~25 s (POST again, same key). Only a worker\'s own token.',
    )
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


def _pages(site: Site) -> None:
    """Past the API: its OpenAPI text, the dashboard page, its icon and static files."""
    listed = site.listed

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc(listed))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_NO_STORE)

    site.routes += [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, f"no such path {request.url.path[:200]}")


def _assemble(site: Site, states: dict[bool, Kept], guard: Guard, secure: bool) -> Starlette:
    """The routes made an app, closed with it, behind the guard; /metrics and /mcp outermost."""
    hub, changes, ctx = site.hub, site.changes, site.ctx

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()
        if changes is not None:
            changes.close()

    app = Starlette(routes=site.routes, lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.hub = hub
    app.state.states = states  # the kept /state answers (a test counts their builds)
    app.add_middleware(GuardMiddleware, guard=guard, secure=secure)
    metrics.mount(app, ctx, guard)  # GET /metrics, its own token's door outermost
    if _mcp_wanted(ctx):
        # lazy: the MCP SDK takes seconds to load; only a server configured for /mcp pays
        from looop.web.mcpserver import mount_http

        mount_http(app, ctx, MAX_BODY)
    return app


_NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store"}


def _page_reads(api: Callable[[str, str, str], Callable[[Handler], Handler]], call: Any) -> None:
    """The dashboard's panels beyond status: goals, a repo worker's diff."""

    @api("GET", "/goals", "The goals (goals/*.md) with their text, newest change first.")
    async def goals(request: Request) -> Response:
        return JSONResponse(await call(reads.goals))

    @api("GET", "/sessions/{sid}/diff", "A repo worker's changes (`looop worker diff`).")
    async def diff(request: Request) -> Response:
        return JSONResponse(await call(reads.diff, str(request.path_params["sid"])))


async def favicon(request: Request) -> Response:
    """Browsers ask /favicon.ico before reading the page's icon link: the same SVG."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


def _mcp_wanted(ctx: Ctx) -> bool:
    try:
        return mcp_over_http(ctx.config().raw)
    except LooopError:  # a broken config serves without its web settings
        return False


def _sse(gen: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={**_NO_STORE, "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, hub: Hub) -> AsyncIterator[str]:
    q = hub.subscribe()
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                msg = await asyncio.wait_for(q.get(), PING_S)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if msg is None:
                return  # dropped as too slow: the browser reconnects
            yield f"data: {msg}\n\n"
    finally:
        hub.unsubscribe(q)


async def _screens(
    request: Request, ctx: Ctx, sid: str, first: dict[str, Any]
) -> AsyncIterator[str]:
    """The screen whenever its text or cursor changed, polled; ends once the session has
    ended (a dead one's screen is its log replayed: sent once, never polled). A remote
    worker's is polled more gently through its backend (its end seen within a few looks);
    while its host does not answer the stream says so once (event `unreachable`) and goes
    on asking, sending the screen again once the host is back."""
    far = await run_in_threadpool(reads.remote, ctx, sid) is not None
    shot: dict[str, Any] | None = first
    last: Any = None
    looks = 0
    while True:
        if shot is not None:
            key = (shot.get("screen_hash"), json.dumps(shot.get("cursor")), len(shot["lines"]))
            if key != last:
                last = key
                yield f"data: {json.dumps(shot, ensure_ascii=False)}\n\n"
            if not shot.get("alive"):
                yield "event: ended\ndata: {}\n\n"
                return
        await asyncio.sleep(REMOTE_POLL_S if far else SCREEN_POLL_S)
        looks += 1
        ask_alive = not far or looks % REMOTE_ALIVE_EVERY == 0 or shot is None
        try:
            shot = await run_in_threadpool(reads.screen, ctx, sid, ask_alive)
        except WebError as e:
            if e.status != 503:
                return
            if last != "unreachable":
                yield f"event: unreachable\ndata: {json.dumps({'error': e.message})}\n\n"
            shot, last = None, "unreachable"


def openapi_doc(listed: list[tuple[str, str, str]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary in listed:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "ok"}}}
        if params:
            op["parameters"] = params
        if method == "POST":
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(f"/api/v1{path}", {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "looop web API", "version": f"1 (looop {__version__})"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
