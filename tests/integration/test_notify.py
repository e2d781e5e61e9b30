"""Notifications through the real apprise library to a loopback HTTP endpoint."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from looop.act.decision import Decision
from looop.act.executor import execute
from looop.act.moves.notes import SendNotification
from looop.core.context import Ctx
from looop.loop.tick import tick
from tests.clocks import FixedClock
from tests.helpers import outside_env, until, wire, with_env

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
        # apprise gives an endpoint 4 s to answer: a loaded test machine may need longer
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/?cto=30&rto=30"
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


def test_a_delivered_notification_leaves_no_thread_behind(ctx: Ctx, endpoint: Endpoint) -> None:
    """apprise's pools are closed after a send: a pulse that notified goes back to one thread,
    so its sensors still start through posix_spawn (core/proc takes that path only then)."""
    wire(ctx, [], notify_urls=[endpoint.url])
    execute(ctx, ctx.knobs(), Decision(SendNotification("done", "n1")))
    assert endpoint.got.wait(20)

    def ours() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name == "looop-notify" or t.name.startswith("ThreadPoolExecutor")
        ]

    assert until(lambda: not ours(), 20), ours()


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


@pytest.mark.timeout(150)
def test_a_new_ask_notifies(ctx: Ctx, endpoint: Endpoint) -> None:
    import subprocess
    import sys

    wire(ctx, [], notify_urls=[endpoint.url])
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_ASK_TIMEOUT_S="3", LOOOP_ASK_POLL_MS="50")
    # its exit waits for the send: a loaded machine may need more than the 10 s default
    env.update(LOOOP_NOTIFY_DRAIN_SECS="40")
    r = subprocess.run(
        [sys.executable, "-m", "looop", "ask", "w1", "--prompt", "Merge PR 7?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 124, r.stderr  # unanswered: it timed out, after asking
    assert endpoint.got.wait(20), r.stderr
    assert "w1 asks: Merge PR 7?" in str(endpoint.bodies[0]["message"])


def _notified(ctx: Ctx, key: str) -> list[dict[str, object]]:
    """Durable records of notifications handed to apprise (one per send, written in the beat)."""
    lines = ctx.paths.events.read_text().splitlines() if ctx.paths.events.exists() else []
    recs = [json.loads(ln) for ln in lines]
    return [r for r in recs if r.get("event") == "notified" and r.get("id") == key]


def _wait_for(endpoint: Endpoint, needle: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in list(endpoint.bodies):
            if needle in str(b.get("message")):
                return b
        endpoint.got.wait(0.05)
        endpoint.got.clear()
    raise AssertionError(f"no notification containing {needle!r}: {endpoint.bodies}")


def test_an_open_breaker_notifies_once_per_opening(
    ctx: Ctx, clock: FixedClock, endpoint: Endpoint
) -> None:
    steps = [
        {
            "decision": {"action": "write_goal", "id": g, "body": f"goal {g}"},
            "stream": [json.dumps({"type": "result", "total_cost_usd": 0.5})],
        }
        for g in "abcdef"
    ]
    wire(ctx, steps, max_daily_usd=0.4, notify_urls=[endpoint.url])
    assert tick(ctx).status == "decided"
    for _ in range(3):  # the breaker holds for the rest of the day: one message, not three
        assert tick(ctx, force=True).status == "budget"
    body = _wait_for(endpoint, "daily budget reached")
    assert "max_daily_usd" in str(body["message"]) and "alert" in str(body["title"])
    assert len(_notified(ctx, "budget")) == 1
    clock.advance(86400)  # a new day: the breaker closes, the AI runs, the latch is released
    assert tick(ctx).status == "decided"
    assert tick(ctx, force=True).status == "budget"  # the next opening is news again
    assert len(_notified(ctx, "budget")) == 2


def test_a_failure_streak_notifies_once_then_recovery(
    ctx: Ctx, clock: FixedClock, endpoint: Endpoint
) -> None:
    steps: list[dict[str, object]] = [{"exit": 3}] * 5 + [
        {"decision": {"action": "noop", "reason": "fine again"}}
    ]
    wire(ctx, steps, notify_urls=[endpoint.url], notify_failure_streak=3)
    for i in range(5):
        assert tick(ctx, force=True).status == "failed"
        clock.advance(400)  # past the backoff (capped at 300 s)
        assert len(_notified(ctx, "failures")) == (1 if i >= 2 else 0)
    body = _wait_for(endpoint, "3 beats in a row failed")
    assert "runner exited 3" in str(body["message"])
    assert tick(ctx, force=True).status == "decided"
    _wait_for(endpoint, "recovered")
    assert len(_notified(ctx, "failures")) == 2


def test_failure_alerts_can_be_turned_off(ctx: Ctx, clock: FixedClock, endpoint: Endpoint) -> None:
    wire(ctx, [{"exit": 3}] * 4, notify_urls=[endpoint.url], notify_failure_streak=0)
    for _ in range(4):
        assert tick(ctx, force=True).status == "failed"
        clock.advance(400)
    assert _notified(ctx, "failures") == []


def test_a_hanging_hook_on_a_breaker_does_not_stall_the_beat(ctx: Ctx) -> None:
    c = with_env(ctx, LOOOP_MAX_DECIDES_PER_HOUR="1")
    wire(c, [], notification="echo $$ > hook.pid; exec sleep 30")
    assert tick(c).status == "decided"
    t0 = time.monotonic()
    assert tick(c, force=True).status == "capped"
    assert time.monotonic() - t0 < 2.0
    assert json.loads(c.paths.alerts.read_text())["capped"] > 0
    pidfile = c.paths.data / "hook.pid"
    pid = _await(lambda: pidfile.exists() and pidfile.read_text().strip())
    os.killpg(int(pid), signal.SIGKILL)  # it really was still hanging: end it
    _await(lambda: not _alive(int(pid)))  # reaped by the notifier's watcher thread


def _await(cond: Callable[[], object], timeout: float = 10) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)  # polling a file another process writes
    raise AssertionError("condition not met in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
