"""Notifications through the real apprise library to a loopback HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from looop.act.actions import Decision, SendNotification
from looop.act.executor import execute
from looop.core.context import Ctx
from tests.helpers import wire

pytestmark = pytest.mark.timeout(60)


class Endpoint:
    def __init__(self, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, object]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                time.sleep(delay)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(json.loads(body))
                outer.got.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    yield ep
    ep.server.shutdown()


def test_send_notification_reaches_apprise_endpoint(ctx: Ctx, endpoint: Endpoint) -> None:
    wire(ctx, [], notify_urls=[endpoint.url])
    execute(ctx, ctx.knobs(), Decision(SendNotification("release 2.1 waits for you", "rel")))
    assert endpoint.got.wait(20)
    body = endpoint.bodies[0]
    assert body["message"] == "release 2.1 waits for you"
    assert "rel" in str(body["title"]) and "looop" in str(body["title"])


def test_a_hanging_endpoint_never_stalls_the_move(ctx: Ctx) -> None:
    slow = Endpoint(delay=8)
    try:
        wire(ctx, [], notify_urls=[slow.url])
        t0 = time.monotonic()
        execute(ctx, ctx.knobs(), Decision(SendNotification("hello")))
        assert time.monotonic() - t0 < 1.0
    finally:
        slow.server.shutdown()


def test_undeliverable_notification_is_reported_not_raised(ctx: Ctx) -> None:
    wire(ctx, [], notify_urls=["nosuchscheme://x"])
    execute(ctx, ctx.knobs(), Decision(SendNotification("hello")))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(n == "notify.failed" for n, _ in ctx.events.seen):
        time.sleep(0.02)  # the failure is reported from the notifier's own thread
    assert any(n == "notify.failed" for n, _ in ctx.events.seen)


def test_a_new_ask_notifies(ctx: Ctx, endpoint: Endpoint) -> None:
    import os
    import subprocess
    import sys

    wire(ctx, [], notify_urls=[endpoint.url])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_ASK_TIMEOUT_S="3", LOOOP_ASK_POLL_MS="50")
    subprocess.run(
        [sys.executable, "-m", "looop", "ask", "w1", "--prompt", "Merge PR 7?"],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert endpoint.got.wait(20)
    assert "w1 asks: Merge PR 7?" in str(endpoint.bodies[0]["message"])
