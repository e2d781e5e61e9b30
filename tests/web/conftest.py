"""Fixtures for the web room: the app on a test data dir, driven by starlette's TestClient
(the same ASGI app `looop web` serves), and a live worker session to look at and steer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError
from looop.web.app import build_app
from looop.web.auth import Guard
from tests.clocks import FixedClock

TOKEN = "t" * 43
HOST = "testserver"  # TestClient's Host
ORIGIN = f"http://{HOST}"


@pytest.fixture
def guard() -> Guard:
    return Guard(token=TOKEN, bind="127.0.0.1", port=80, public=(HOST,))


@pytest.fixture
def client(ctx: Ctx, guard: Guard) -> Iterator[TestClient]:
    with TestClient(build_app(ctx, guard), base_url=ORIGIN) as c:
        yield c


@pytest.fixture
def authed(client: TestClient) -> TestClient:
    """Logged in as a browser is: the token once in the URL, then the cookie; same Origin."""
    r = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303
    client.headers["Origin"] = ORIGIN
    return client


@pytest.fixture
def worker(ctx: Ctx) -> Iterator[str]:
    """w1: a live `cat` session (it echoes what it is sent)."""
    data = ctx.paths.data
    spawn(data, "w1", ["cat"], cwd=data, env=dict(os.environ))
    try:
        yield "w1"
    finally:
        with contextlib.suppress(SessionError):  # a test may have killed it already
            kill(data, "w1")
        wait(data, "w1", 30, FixedClock())


def journal(ctx: Ctx) -> str:
    p: Path = ctx.paths.journal
    return p.read_text() if p.exists() else ""


LOOOP = str(Path(sys.executable).with_name("looop"))


@contextlib.contextmanager
def serving(env: dict[str, str], stop: int = signal.SIGTERM) -> Iterator[str]:
    """A real `looop web --port 0` (its own session) on `env`: its first line, the URL with
    its token; the server and what it started are signalled `stop` and reaped at the end."""
    web = subprocess.Popen(
        [LOOOP, "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert web.stdout is not None
    url = web.stdout.readline().strip()
    try:
        assert "/?token=" in url, web.stderr.read() if web.stderr else ""
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, stop)
        web.communicate(timeout=20)
