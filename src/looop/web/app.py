"""The Starlette app: the guard in front of everything (web/requestguard.py), the /api/v1
routes, the dashboard page and its static files (shipped in the package, no build step); the
SSE streams are web/streams.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from looop.act import goalarchive
from looop.contract.requests import Answerer, Refusal, Run
from looop.core.context import Ctx
from looop.core.webconfig import mcp_over_http
from looop.home import jsonio
from looop.home.errors import LooopError, need_extra
from looop.remote import tokens
from looop.remote.hosts import remote_worker
from looop.spend.days import Held
from looop.web import actions, metrics, reads, reviews
from looop.web.auth import Guard
from looop.web.cache import Changes, Kept, Key, key_of, stat_of, state_inputs
from looop.web.errors import WebError
from looop.web.events import Hub
from looop.web.fleetkeep import Read, answer, kept_fleet
from looop.web.openapi import openapi_doc
from looop.web.requestguard import WORKER_TOKEN, GuardMiddleware, error_response
from looop.web.revival import pulse_kept
from looop.web.streams import NO_STORE, live_events, screen_changes, sse

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
    fleets: dict[bool, Kept[Read]] = field(default_factory=dict)  # the kept /sessions rows

    def api(self, method: str, path: str, summary: str) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                try:
                    return await fn(request)
                except WebError as e:
                    return error_response(e.status, e.message, e.more)
                except Exception as e:  # a bug: one line to the client, the trace to stderr
                    traceback.print_exc(file=sys.stderr)
                    return error_response(500, f"internal error: {type(e).__name__}")

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
    changes = Changes.open(ctx.paths, ctx.env)
    return Site(
        ctx=ctx,
        hub=Hub(ctx, changes=changes),  # the live stream woken by the same watches
        answerer=Answerer(ctx, remote_worker(ctx.paths.data), self_only=True),
        changes=changes,
        contract_wait_s=contract_wait_s,
    )


def _kept_states(site: Site) -> dict[bool, Kept[bytes]]:
    """The dashboard polls /state: built once per change, not once per request (web/cache.py)."""
    ctx, changes = site.ctx, site.changes

    def state_key() -> Key:
        if changes is not None:
            return (int(ctx.clock.now()), changes.now())
        return key_of(ctx.clock, state_inputs(ctx.paths, ctx.env))

    def kept_state(every: bool) -> Kept[bytes]:

        def build() -> bytes:
            return json_bytes(reads.state(ctx, every))

        return Kept(state_key, build)

    return {False: kept_state(False), True: kept_state(True)}


def _kept_costs(site: Site) -> Callable[[int], Awaitable[bytes]]:
    """The dashboard reads /cost on every redraw: built again only when the ledger, its day
    totals or the local date moved (a stat of three files), not once per request; and then
    from the day totals held since the last build, caught up with the rows appended since
    (one build at a time: they are caught up in place)."""
    ctx = site.ctx
    data = str(ctx.paths.data)
    inputs = [os.path.join(data, n) for n in ("cost.jsonl", "cost", ".cost-days.json")]
    kept: dict[int, Kept[bytes]] = {}
    held, lock = Held(), threading.Lock()

    def build(days: int) -> bytes:
        with lock:
            return json_bytes(reads.cost(ctx, days, held))

    def get(days: int) -> Awaitable[bytes]:
        if days not in kept:
            if len(kept) >= 16:
                kept.clear()  # a client walking every ?days= keeps no more than a few

            def key() -> Key:
                day = ctx.clock.local_tm(ctx.clock.now())[:3]
                return (day, *(stat_of(p) for p in inputs))

            kept[days] = Kept(key, lambda: build(days))
        return kept[days].get()

    return get


def _sid(request: Request) -> str:
    return str(request.path_params["sid"])


def _every(request: Request) -> bool:
    return request.query_params.get("all", "") in ("1", "true")


def _session_reads(site: Site, states: dict[bool, Kept[bytes]]) -> None:
    """The loop now: status, sessions, a session's screen and log."""
    api, call, ctx = site.api, site.call, site.ctx
    fleets = site.fleets
    fleets.update({e: kept_fleet(ctx, site.changes, e, json_bytes) for e in (False, True)})

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
        return await answer(fleets[_every(request)], request, ctx.clock, json_bytes)

    @api("GET", "/sessions/{sid}/screen", "A session's screen: rows of styled runs.")
    async def screen(request: Request) -> Response:
        return JSONResponse(await call(reads.screen, _sid(request)))

    @api("GET", "/sessions/{sid}/screen/stream", "The screen as SSE, sent when it changes.")
    async def screen_stream(request: Request) -> Response:
        first = await call(reads.screen, _sid(request))  # 404 before the stream starts
        return sse(screen_changes(request, ctx, _sid(request), first))

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

    costs = _kept_costs(site)

    @api("GET", "/cost", "Spend today by worker and runner, and per day; ?days=N (14).")
    async def cost(request: Request) -> Response:
        body = await costs(_int(request, "days", 14))
        return Response(body, media_type="application/json")

    @api("GET", "/asks", "Pending asks, LIVE or STRANDED (`looop asks --json`).")
    async def asks(request: Request) -> Response:
        return JSONResponse(await call(reads.asks))

    @api("GET", "/needs", "What waits on a human, each with its answer (`looop needs --json`).")
    async def needs(request: Request) -> Response:
        return JSONResponse(await call(reads.needs))

    @api("GET", "/schedules", "Schedules with their next fire.")
    async def schedules(request: Request) -> Response:
        return JSONResponse(await call(reads.schedule_rows))


def _live_reads(site: Site) -> None:
    hub = site.hub

    @site.api("GET", "/events", "Live events and journal lines (SSE).")
    async def events(request: Request) -> Response:
        return sse(live_events(request, hub))


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
    (
        "/workers/{wid}/review/comments",
        'Draft a review comment: {"text", "file"?, "line"?} (no file: the whole change).',
        reviews.comment,
        "wid",
    ),
    ("/workers/{wid}/review/send", "Send the drafted round (`--send`).", reviews.send, "wid"),
    ("/workers/{wid}/unstall", "Clear its stall: agents may start it.", actions.unstall, "wid"),
    (
        "/workers/{wid}/continue",
        'Let a worker at its budget go on: {"budget_usd"?} (none: its budget lifted).',
        actions.go_on,
        "wid",
    ),
    (
        "/workers/{wid}/land",
        'Land the change (`looop land`) at the tip the review showed: {"at": tip (of several: '
        '{name: tip}), "mode"?: "ff"|"merge"|"pr", "into"?}; a branch that moved since is 409, '
        'as is a conflict, with "conflict": the comment to send back.',
        reviews.land_change,
        "wid",
    ),
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
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    site.routes += [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, f"no such path {request.url.path[:200]}")


def _assemble(site: Site, states: dict[bool, Kept[bytes]], guard: Guard, secure: bool) -> Starlette:
    """The routes made an app, closed with it, behind the guard; /metrics and /mcp outermost."""
    hub, changes, ctx = site.hub, site.changes, site.ctx

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with pulse_kept(ctx):  # a lost pulse `up` wants is brought back (revival.py)
            yield
        await hub.close()
        if changes is not None:
            changes.close()

    app = Starlette(routes=site.routes, lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.hub = hub
    app.state.states = states  # the kept /state answers (a test counts their builds)
    app.state.fleets = site.fleets  # and /sessions' rows
    app.add_middleware(GuardMiddleware, guard=guard, secure=secure)
    metrics.mount(app, ctx, guard)  # GET /metrics, its own token's door outermost
    if _mcp_wanted(ctx):
        need_extra("mcp", 'the config\'s "web": {"mcp": true}')
        # lazy: the MCP SDK takes seconds to load; only a server configured for /mcp pays
        from looop.web.mcpserver import mount_http

        mount_http(app, ctx, MAX_BODY)
    return app


def _page_reads(api: Callable[[str, str, str], Callable[[Handler], Handler]], call: Any) -> None:
    """The dashboard's panels beyond status: goals, a repo worker's diff."""

    @api("GET", "/goals", "The goals (goals/*.md) with their text, newest change first.")
    async def goals(request: Request) -> Response:
        return JSONResponse(await call(reads.goals))

    @api("GET", "/goals/archived", "The archived goals, newest first, each with why it went.")
    async def goals_archived(request: Request) -> Response:
        return JSONResponse(await call(goalarchive.archived))

    @api("GET", "/sessions/{sid}/diff", "A repo worker's changes (`looop worker diff`).")
    async def diff(request: Request) -> Response:
        return JSONResponse(await call(reads.diff, str(request.path_params["sid"])))

    @api("GET", "/workers/{sid}/review", "A repo worker's change for review (`looop review`).")
    async def worker_review(request: Request) -> Response:
        sid = str(request.path_params["sid"])
        return JSONResponse(await call(reviews.worker_review, sid))


async def favicon(request: Request) -> Response:
    """Browsers ask /favicon.ico before reading the page's icon link: the same SVG."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


def _mcp_wanted(ctx: Ctx) -> bool:
    try:
        return mcp_over_http(ctx.config().raw)
    except LooopError:  # a broken config serves without its web settings
        return False
