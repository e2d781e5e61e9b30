"""A worker away from home in the web view: its screen, stream and log are read, and it is
driven, through its backend — here a second sessions root standing in for a host (the very
`LocalBackend` a home uses), which can be made to stop answering. The real SSH host is
tests/hosts/test_remote_verbs.py's."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from looop.act.moves import far as far_mod
from looop.core.context import Ctx
from looop.remote import engine as remote_mod
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session
from looop.workers.polled import last_lines as far_tail
from tests.clocks import FixedClock
from tests.farhost import FarHost
from tests.helpers import wait_until
from tests.web.conftest import journal

pytestmark = pytest.mark.timeout(60)

FAR = "far1"


@pytest.fixture
def far(ctx: Ctx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FarHost]:
    """far1: a live `cat` on the 'host' (its own sessions root), known to the home as remote."""
    root = tmp_path / "host"
    root.mkdir()
    spawn(root, FAR, ["cat"], cwd=root, env=dict(os.environ))
    host = FarHost(root)
    monkeypatch.setattr(remote_mod, "remote_of", lambda c, wid: host if wid == FAR else None)

    # a move looks for the remote record with one stat before it asks the rooms away
    def away(data: str, env: object, clock: object, wid: str, ctx: object = None) -> object:
        return host if wid == FAR else None

    monkeypatch.setattr(far_mod, "worker_away", away)
    try:
        yield host
    finally:
        with contextlib.suppress(SessionError):
            kill(root, FAR)
        wait(root, FAR, 30, FixedClock())


def _told(ctx: Ctx) -> list[str]:
    """What is queued at home for far1's next `looop told`."""
    return [json.loads(f.read_text())["msg"] for f in sorted(ctx.paths.tells.glob(f"{FAR}-*.json"))]


def _screen_text(shot: dict[str, Any]) -> str:
    return "\n".join("".join(r["t"] for r in line) for line in shot["lines"])


def test_a_remote_workers_screen_and_log_come_through_its_backend(
    authed: TestClient, ctx: Ctx, far: FarHost
) -> None:
    assert not (ctx.paths.data / "sessions" / FAR).exists()  # nothing of it lives at home
    r = authed.post(f"/api/v1/sessions/{FAR}/send", json={"text": "hello far"})
    assert r.status_code == 200, r.text
    wait_until(
        lambda: "hello far" in _screen_text(authed.get(f"/api/v1/sessions/{FAR}/screen").json()),
        10,
        "the typed text on the remote screen",
    )
    shot = authed.get(f"/api/v1/sessions/{FAR}/screen").json()
    assert shot["alive"] is True and shot["cols"] == 80
    assert "hello far" in authed.get(f"/api/v1/sessions/{FAR}/log?tail=3").json()["text"]
    assert {"screen", "log", "send"} <= set(far.calls)
    assert f"web: steer {FAR}" in journal(ctx)  # journaled as a local one is


def test_a_remote_worker_is_typed_into_pressed_told_and_killed(
    authed: TestClient, ctx: Ctx, far: FarHost
) -> None:
    base = f"/api/v1/sessions/{FAR}"
    assert authed.post(f"{base}/send", json={"text": "half", "enter": False}).status_code == 200
    assert authed.post(f"{base}/keys", json={"keys": ["Enter"]}).status_code == 200
    wait_until(lambda: "half" in authed.get(f"{base}/log").json()["text"], 10, "half a line")
    told = authed.post(f"{base}/tell", json={"message": "look at the tests"})
    assert told.status_code == 200, told.text
    assert _told(ctx) == ["look at the tests"]
    assert authed.post(f"{base}/kill", json={"reason": "done"}).status_code == 200
    host = far.inner.root
    wait_until(lambda: not get_session(host, FAR).alive, 10, "the remote worker dead")
    assert "kill" in far.calls
    again = authed.post(f"{base}/send", json={"text": "late"})
    assert again.status_code == 409 and "not running" in again.json()["error"]
    assert authed.post(f"{base}/tell", json={"message": "late"}).status_code == 409
    shot = authed.get(f"{base}/screen").json()  # a finished one's screen is still shown
    assert shot["alive"] is False and "half" in _screen_text(shot)


def test_a_host_that_does_not_answer_is_503_in_one_line_and_a_tell_waits(
    authed: TestClient, ctx: Ctx, far: FarHost
) -> None:
    base = f"/api/v1/sessions/{FAR}"
    far.down.set()
    for path in (f"{base}/screen", f"{base}/log", f"{base}/screen/stream"):
        r = authed.get(path)
        assert r.status_code == 503, (path, r.text)
        err = r.json()["error"]
        assert "\n" not in err and "unreachable" in err and FAR in err
    for verb, body in (("send", {"text": "x"}), ("keys", {"keys": ["Enter"]}), ("kill", {})):
        r = authed.post(f"{base}/{verb}", json=body)
        assert r.status_code == 503 and "unreachable" in r.json()["error"], verb
    assert "kill" not in far.calls and "send" not in far.calls  # nothing was attempted
    # a worker out of reach is not dead: what it is told waits at home for its `told`
    assert authed.post(f"{base}/tell", json={"message": "when back"}).status_code == 200
    assert _told(ctx) == ["when back"]
    far.down.clear()
    assert authed.get(f"{base}/screen").status_code == 200


def test_the_stream_says_unreachable_once_then_shows_the_screen_again(
    authed: TestClient, far: FarHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.web import streams

    monkeypatch.setattr(streams, "REMOTE_POLL_S", 0.05)

    def back_after_two_more_looks(seen: int) -> None:
        wait_until(lambda: len(far.calls) >= seen + 2, 10, "the stream asking again")
        far.down.clear()

    events: list[str] = []
    with authed.stream("GET", f"/api/v1/sessions/{FAR}/screen/stream") as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                events.append("screen")
                if len(events) == 1:
                    far.down.set()  # the host drops after the first screen
                else:
                    break
            elif line == "event: unreachable":
                events.append("unreachable")
                data = json.loads(next(lines).removeprefix("data: "))
                assert "unreachable" in data["error"] and "\n" not in data["error"]
                threading.Thread(
                    target=back_after_two_more_looks, args=(len(far.calls),), daemon=True
                ).start()
    # said once while the host stayed silent, and the screen came back by itself
    assert events == ["screen", "unreachable", "screen"]


class LogOnly:
    """A backend whose log is `data`, read in chunks as the sessions room reads a log: text
    from an offset, nothing past the end. Counts what crossed."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk, self.sent, self.calls = data, chunk, 0, 0

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        self.calls += 1
        part = self.data[since : since + self.chunk]
        self.sent += len(part)
        return part.decode(errors="replace"), since + len(part)


def test_a_long_remote_logs_tail_is_found_without_reading_it_all() -> None:
    lines = [f"line {i} " + "x" * (i % 50) for i in range(200_000)]
    data = ("\n".join(lines) + "\n").encode()
    for chunk in (64 << 10, 1 << 20, 3 << 20):
        far = LogOnly(data, chunk)
        got = far_tail(far, FAR, 25)  # type: ignore[arg-type]
        assert got.split("\n") == lines[-25:], chunk
        if chunk < len(data) // 16:  # only about the tail crossed, not the whole log
            assert far.sent < len(data) // 4, (chunk, far.sent)
    many = LogOnly(data, 64 << 10)
    assert far_tail(many, FAR, 2000).split("\n") == lines[-2000:]  # type: ignore[arg-type]
    small = LogOnly(b"one\ntwo\nthree", 4 << 20)
    assert far_tail(small, FAR, 2) == "two\nthree"  # type: ignore[arg-type]
    assert small.calls == 2
    assert far_tail(LogOnly(b"", 1 << 20), FAR, 5) == ""  # type: ignore[arg-type]


def test_a_remote_worker_whose_host_is_gone_from_the_records_is_one_line(
    authed: TestClient, ctx: Ctx
) -> None:
    # the real lookup (no stand-in): a record naming a host that is no longer registered
    recs = ctx.paths.data / "hosts" / "workers"
    recs.mkdir(parents=True)
    (recs / "lost1.json").write_text(json.dumps({"v": 1, "id": "lost1", "host": "gone"}))
    for method, path, body in (
        ("GET", "/screen", None),
        ("GET", "/log", None),
        ("POST", "/send", {"text": "x"}),
        ("POST", "/kill", {}),
    ):
        r = authed.request(method, f"/api/v1/sessions/lost1{path}", json=body)
        assert r.status_code == 409, (path, r.text)
        err = r.json()["error"]
        assert "lost1" in err and "gone" in err and "\n" not in err
    (recs / "bad1.json").write_text("{not json")  # unreadable: not taken for a remote worker
    assert authed.get("/api/v1/sessions/bad1/screen").status_code == 404


def test_the_stream_of_a_remote_worker_ends_when_it_does_asking_its_host_gently(
    authed: TestClient, far: FarHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.web import streams

    monkeypatch.setattr(streams, "REMOTE_POLL_S", 0.05)
    seen: list[str] = []
    with authed.stream("GET", f"/api/v1/sessions/{FAR}/screen/stream") as r:
        for line in r.iter_lines():  # returns: the stream ends by itself
            if line.startswith("data: {") and not seen:
                far.calls.clear()
                kill(far.inner.root, FAR)
            if line.startswith('data: {"') or line.startswith("event:"):
                seen.append("screen" if line.startswith("data") else line)
    assert seen[0] == "screen" and seen[-1] == "event: ended"
    # each look is one round trip to the host; whether it lives is asked every few looks
    assert far.calls.count("screen") >= 2 * far.calls.count("reach") > 0
