"""What every request meets before its route: the Host checked (DNS rebinding), the token
(in the query once, then the cookie, or a Bearer header) on all but the static files, the
Origin on every state-changing call, a worker's own token let through to its contract alone;
and the hardening headers on every response. The checks themselves are web/auth.py's."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from looop.remote import tokens
from looop.web.auth import Guard, cookie_name, token_ok

SAFE = ("GET", "HEAD", "OPTIONS")
CONTRACT_PATH = "/api/v1/contract"
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
            await error_response(403, "this server does not answer to that Host name")(
                scope, receive, send
            )
            return
        path: str = scope["path"]
        if "\0" in path or b"%00" in scope.get("query_string", b""):
            await error_response(400, "the address holds a NUL (%00): send it without one")(
                scope, receive, send
            )
            return
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
            await error_response(401, "missing or wrong token — open the URL `looop web` printed")(
                scope, receive, send
            )
            return
        if scope["method"] not in SAFE and not (
            self.guard.origin_ok(headers.get("origin"), host)
            or (by_bearer and headers.get("origin") is None)
        ):
            await error_response(403, "cross-origin request refused (Origin is not this server)")(
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
            await error_response(401, f"a worker's token speaks only POST {CONTRACT_PATH}")(
                scope, receive, send
            )
            return
        origin = headers.get("origin")
        if origin is not None and not self.guard.origin_ok(origin, host):
            await error_response(403, "cross-origin request refused (Origin is not this server)")(
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
