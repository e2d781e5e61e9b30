"""`GET /api/v1/state` as the dashboard polls it: built once per change and served again while
nothing it reads changed (never rebuilt per request), yet every change shows on the next read;
finished workers left out unless asked for; and on a kept-alive connection each answer comes
at once (no ~40 ms Nagle / delayed-ACK stall between a head and its body)."""

from __future__ import annotations

import json
import signal
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import answer, new_ask
from looop.sessions.client import kill, wait
from looop.web import cache
from tests.clocks import FixedClock
from tests.helpers import clean_env, wait_until
from tests.web.conftest import serving

pytestmark = pytest.mark.timeout(60)


def _builds(client: TestClient, every: bool = False) -> int:
    return int(client.app.state.states[every].builds)  # type: ignore[attr-defined]


@pytest.fixture(params=["inotify", "stat"])
def watched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the server sees a change: the kernel's word (Linux) and the files' stats."""
    if request.param == "stat":
        monkeypatch.setattr(cache.Changes, "open", classmethod(lambda cls, p, e: None))
    return str(request.param)


def test_state_is_built_once_while_nothing_changes(
    watched: str, authed: TestClient, ctx: Ctx
) -> None:
    first = authed.get("/api/v1/state").json()
    for _ in range(20):
        assert authed.get("/api/v1/state").json() == first
    assert _builds(authed) == 1


def _goal(ctx: Ctx) -> None:
    ctx.paths.goals.mkdir(exist_ok=True)
    ctx.paths.goal("g7").write_text("ship it\n")


def _journal(ctx: Ctx) -> None:
    store.append_line(ctx.paths.journal, "- 10:00 a line the web must show")


def _backoff(ctx: Ctx) -> None:
    store.write_json(ctx.paths.backoff, {"fails": 2, "ts": ctx.clock.now()})


def _schedules(ctx: Ctx) -> None:
    ctx.paths.snapshots.mkdir(exist_ok=True)
    store.write_json(ctx.paths.snapshots / "sys-schedules.json", {"signal": {"s1": "due"}})


def _new_ask(ctx: Ctx) -> None:
    p = ctx.paths
    new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())


def _answered(ctx: Ctx) -> None:
    p = ctx.paths
    answer(p.asks, p.answers, "w1-1", "yes", ctx.clock.now())


def _config(ctx: Ctx) -> None:
    cfg = {"default": "r2", "runners": {"r2": {"tick": "true", "worker": "cat"}}}
    store.write_json(ctx.paths.config, cfg)


CHANGES: dict[str, tuple[Callable[[Ctx], None], Callable[[dict[str, Any]], bool]]] = {
    "a goal written": (_goal, lambda st: "g7" in st["goals"]),
    "a journal line appended": (_journal, lambda st: "must show" in "".join(st["journal_tail"])),
    "the backoff written (by rename)": (_backoff, lambda st: st["failing_streak"] == 2),
    "a snapshot status reads": (_schedules, lambda st: st["schedules"]["due"] == ["s1"]),
    "a new ask (no beat since)": (_new_ask, lambda st: st["asks"] == ["w1-1"]),
    "the config edited": (_config, lambda st: st["runner"] == "r2"),
}


def test_an_answer_shows_on_the_next_read(watched: str, authed: TestClient, ctx: Ctx) -> None:
    _new_ask(ctx)
    assert authed.get("/api/v1/state").json()["asks"] == ["w1-1"]
    _answered(ctx)  # the clock stands still and no beat runs: the answer alone tells
    assert authed.get("/api/v1/state").json()["asks"] == []


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_shows_on_the_next_read(
    watched: str, authed: TestClient, ctx: Ctx, change: str
) -> None:
    make, shows = CHANGES[change]
    before = authed.get("/api/v1/state").json()
    assert not shows(before)
    make(ctx)  # the clock stands still: only the change itself can tell the server
    after = authed.get("/api/v1/state").json()
    assert shows(after), change
    assert _builds(authed) == 2
    authed.get("/api/v1/state")
    assert _builds(authed) == 2  # and kept again


def test_a_new_second_is_a_new_answer(authed: TestClient, clock: FixedClock) -> None:
    # `now` and the relative times move with the clock even when no file does
    first = authed.get("/api/v1/state").json()
    clock.advance(1)
    second = authed.get("/api/v1/state").json()
    assert second["now"]["ts"] == first["now"]["ts"] + 1


def test_a_finished_worker_leaves_state_unless_all_is_asked(
    watched: str, authed: TestClient, ctx: Ctx, worker: str
) -> None:
    live = authed.get("/api/v1/state").json()["workers"]
    assert [(w["id"], w["alive"]) for w in live] == [(worker, True)]
    kill(ctx.paths.data, worker)
    wait(ctx.paths.data, worker, 30, FixedClock())
    # the supervisor's last status.json lands as it exits: the next read after it shows it
    wait_until(lambda: not authed.get("/api/v1/state").json()["workers"], 10, "w1 gone")
    every = authed.get("/api/v1/state?all=1").json()["workers"]
    assert [(w["id"], w["alive"]) for w in every] == [(worker, False)]


# --- a real server, a kept-alive connection --------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    env = clean_env(tmp_path, tmp_path / "data", LOOOP_CONFIG=str(tmp_path / "config.json"))
    with serving(env, stop=signal.SIGINT) as url:
        base, token = url.split("/?token=")
        host, port = base.removeprefix("http://").rsplit(":", 1)
        yield host, int(port), token


def _answer(s: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end]).lower()
    size = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
    while len(buf) < end + size:
        buf += s.recv(65536)
    body = bytes(buf[end : end + size])
    del buf[: end + size]
    return body


def test_answers_on_a_kept_alive_connection_come_at_once(served: tuple[str, int, str]) -> None:
    host, port, token = served
    req = (
        f"GET /api/v1/state HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    took: list[float] = []
    with socket.create_connection((host, port), timeout=10) as s:
        buf = bytearray()
        for _ in range(21):
            t0 = time.perf_counter()
            s.sendall(req)
            body = _answer(s, buf)
            took.append(time.perf_counter() - t0)
            assert "health" in json.loads(body)
    # with Nagle on, every answer after the first waited out the client's delayed ACK
    # (40 ms on Linux) between its head and its body: a median far above this
    assert statistics.median(took[1:]) < 0.025, [round(t * 1000, 1) for t in took]
