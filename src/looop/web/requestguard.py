"""What every request meets before its route: the Host checked (DNS rebinding), the token
(in the query once, then the cookie, or a Bearer header) on all but the static files, the
Origin on every state-changing call, a worker's own token let through to its contract alone;
and the hardening headers on every response. The checks themselves are web/auth.py's."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from looop.remote import tokens
from looop.web.auth import Guard, cookie_name, token_ok

SAFE = ("GET", "HEAD", "OPTIONS")
CONTRACT_PATH = "/api/v1/contract"
METRICS_PATH = "/metrics"
WORKER_TOKEN = "looop.worker_token"  # the scope key the guard leaves a worker's token under
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


def error_response(status: int, message: str, more: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({**(more or {}), "error": message}, status_code=status)


class GuardMiddleware:
    """Host check (DNS rebinding) on every request; the token (query once, then the cookie,
    or a Bearer header) on all but the static files; the Origin on every state-changing call.
    `metrics`: the read-only metrics token (web/metrics.py), which opens GET /metrics alone."""

    def __init__(self, app: ASGIApp, guard: Guard, secure: bool, metrics: str | None) -> None:
        self.app, self.guard, self.secure, self.metrics = app, guard, secure, metrics
        self.cookie = cookie_name(guard.port)

    async def __call__(self, scope: Scope, receive: Receive, outer: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, outer)
            return

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HARDENING]
            await outer(message)

        refused = self._refusal(scope, Headers(scope=scope))
        await (self.app if refused is None else refused)(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """What answers the request in the route's stead (a refusal, the cookie handed on);
        None: the route answers."""
        host, path, method = headers.get("host"), str(scope["path"]), scope["method"]
        if not self.guard.host_ok(host):
            return error_response(403, "this server does not answer to that Host name")
        if "\0" in path or b"%00" in scope.get("query_string", b""):
            return error_response(400, "the address holds a NUL (%00): send it without one")
        if path.startswith("/static/") or path == "/favicon.ico":
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [None])[0]
        tok = self.guard.token
        by_query = given is not None and token_ok(given, tok)
        if by_query and path == "/":
            return self._hand_cookie()
        bearer = headers.get("authorization", "")
        given_bearer = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
        origin = headers.get("origin")
        if path == METRICS_PATH and self.metrics and token_ok(given_bearer, self.metrics):
            if method in ("GET", "HEAD"):
                return None
            return error_response(405, "the metrics token reads GET /metrics only")
        if tokens.looks_scoped(given_bearer):
            # a worker's token: its own contract, and nothing else (the route checks whose)
            if path != CONTRACT_PATH or method != "POST":
                return error_response(401, f"a worker's token speaks only POST {CONTRACT_PATH}")
            scope[WORKER_TOKEN] = given_bearer
            crossed = origin is not None and not self.guard.origin_ok(origin, host)
        else:
            by_bearer = given_bearer is not None and token_ok(given_bearer, tok)
            if not (by_bearer or token_ok(_cookie(headers, self.cookie), tok) or by_query):
                if path == "/" and method in SAFE:
                    page = "<!doctype html><title>looop</title><p>Open the address `looop web` printed (it carries the token).</p>"  # noqa: E501
                    return HTMLResponse(page, status_code=401)
                return error_response(
                    401, "missing or wrong token — open the URL `looop web` printed"
                )
            crossed = method not in SAFE and not (
                self.guard.origin_ok(origin, host) or (by_bearer and origin is None)
            )
        if crossed:
            return error_response(403, "cross-origin request refused (Origin is not this server)")
        return None

    def _hand_cookie(self) -> Response:
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
        return resp


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None
