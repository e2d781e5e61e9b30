"""`GET /api/v1/sessions` as the dashboard polls it: the fleet's rows read once per change and
served again (their ages moved on) while nothing changed; an unchanged fleet answers a poller
holding its ETag with 304; and a change, even a supervisor killed without a word, shows on the
next read."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.home import store
from looop.spend.record import append_cost
from looop.web import cache
from tests.clocks import FixedClock
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)


def _builds(client: TestClient, every: bool = False) -> int:
    return int(client.app.state.fleets[every].builds)  # type: ignore[attr-defined]


@pytest.fixture(params=["inotify", "stat"])
def watched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the server sees a change: the kernel's word (Linux) and the files' stats."""
    if request.param == "stat":
        monkeypatch.setattr(cache.Changes, "open", classmethod(lambda cls, p, e: None))
    return str(request.param)


def _row(rows: list[dict[str, object]], sid: str) -> dict[str, object]:
    return next(r for r in rows if r["id"] == sid)


def _settled(client: TestClient, sid: str) -> dict[str, object]:
    """The worker's row once its start has stopped writing (its first output landed)."""
    seen: list[dict[str, object]] = [{}]

    def same() -> bool:
        row = _row(client.get("/api/v1/sessions").json(), sid)
        was, seen[0] = seen[0], row
        return row == was and row["last_output_unix"] is not None

    wait_until(same, 10, f"{sid}'s row settled")
    return seen[0]


def test_rows_are_read_once_and_their_ages_move_with_the_clock(
    watched: str, authed: TestClient, clock: FixedClock, worker: str
) -> None:
    first = _settled(authed, worker)
    builds = _builds(authed)
    up = first["up_s"]
    assert isinstance(up, float)
    for _ in range(10):
        assert _row(authed.get("/api/v1/sessions").json(), worker) == first
    clock.advance(3)  # within the reread window: the ages move, the rows are not read again
    later = _row(authed.get("/api/v1/sessions").json(), worker)
    assert later["up_s"] == pytest.approx(up + 3)
    assert {k: v for k, v in later.items() if not k.endswith("_s")} == {
        k: v for k, v in first.items() if not k.endswith("_s")
    }
    assert _builds(authed) == builds


def test_an_unchanged_fleet_answers_304_to_its_etag(
    watched: str, authed: TestClient, clock: FixedClock, ctx: Ctx, worker: str
) -> None:
    _settled(authed, worker)
    r = authed.get("/api/v1/sessions")
    tag = r.headers["etag"]
    builds = _builds(authed)
    assert r.status_code == 200 and tag.startswith('W/"')
    clock.advance(30)  # read again (the window moved), the same rows: the same tag
    same = authed.get("/api/v1/sessions", headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b""
    assert _builds(authed) == builds + 1
    store.atomic_write(ctx.paths.sessions / worker / "note", "look here")
    changed = authed.get("/api/v1/sessions", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert _row(changed.json(), worker)["note"] == "look here"
    other = authed.get("/api/v1/sessions", headers={"If-None-Match": 'W/"someone-else"'})
    assert other.status_code == 200


def test_a_supervisor_killed_without_a_word_leaves_the_next_read(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    assert [r["id"] for r in authed.get("/api/v1/sessions").json()] == ["pulse", worker]
    sdir = ctx.paths.sessions / worker
    pid = json.loads((sdir / "meta.json").read_text())["supervisor_pid"]
    os.kill(pid, signal.SIGKILL)  # no status.json written: only its lock closing tells
    # the clock stands still: neither the second nor the reread window moves
    wait_until(
        lambda: [r["id"] for r in authed.get("/api/v1/sessions").json()] == ["pulse"],
        10,
        "the killed worker gone from /sessions",
    )


def test_todays_spend_shows_on_the_next_read(
    watched: str, authed: TestClient, clock: FixedClock, ctx: Ctx, worker: str
) -> None:
    assert _row(authed.get("/api/v1/sessions").json(), worker)["cost_today_usd"] is None
    append_cost(ctx.paths.data / "cost.jsonl", clock.now(), "session", worker, "claude", 0.25)
    got = _row(authed.get("/api/v1/sessions").json(), worker)["cost_today_usd"]
    assert got == pytest.approx(0.25)
    append_cost(ctx.paths.data / "cost.jsonl", clock.now(), "session", worker, "claude", 0.5)
    got = _row(authed.get("/api/v1/sessions").json(), worker)["cost_today_usd"]
    assert got == pytest.approx(0.75)


def test_the_needs_queue_and_the_fleet_come_from_one_read_of_the_fleet(
    watched: str, authed: TestClient, ctx: Ctx, worker: str
) -> None:
    """The page asks /needs and /sessions at once: at 300 workers each walking every
    worker's files was most of the wait for its fleet. Both are made from the kept rows, so a
    change is read once, and the queue says what the fleet's rows say."""
    _settled(authed, worker)
    store.atomic_write(ctx.paths.sessions / worker / "note", "look here")
    builds = _builds(authed)
    assert authed.get("/api/v1/needs").json() == []
    assert _builds(authed) == builds + 1  # the queue read the fleet through the kept read
    assert _row(authed.get("/api/v1/sessions").json(), worker)["note"] == "look here"
    assert _builds(authed) == builds + 1  # and the fleet was not walked again


def test_state_and_the_fleet_come_from_one_walk_of_the_workers(
    watched: str, authed: TestClient, ctx: Ctx, worker: str
) -> None:
    """The page asks /state, /sessions and /needs at once: at 300 workers /state's own walk of
    every worker's files, at the same moment as the fleet's, held the fleet's rows back. /state
    takes its workers from the kept read, so a change is walked once and the two agree."""
    _settled(authed, worker)
    store.atomic_write(ctx.paths.sessions / worker / "note", "look here")
    builds = _builds(authed)
    (w,) = authed.get("/api/v1/state").json()["workers"]
    assert (w["id"], w["note"], w["flagged"]) == (worker, "look here", True)
    assert _builds(authed) == builds + 1  # /state read the workers through the kept read
    assert _row(authed.get("/api/v1/sessions").json(), worker)["note"] == "look here"
    assert authed.get("/api/v1/needs").json() == []
    assert _builds(authed) == builds + 1  # and neither walked them again
    every = authed.get("/api/v1/state?all=1").json()["workers"]
    assert [x["id"] for x in every] == [worker]
    assert _builds(authed, True) == 1  # ?all=1 has its own kept read, of every worker


def _held(page: str) -> tuple[str, list[dict[str, object]]] | None:
    """The ETag and rows a served page holds, or None."""
    m = re.search(
        r"<script type=application/json id=fleet-read data-tag='([^']*)'>(.*?)</script>", page
    )
    return None if m is None else (m[1], json.loads(m[2]))


def test_the_page_carries_the_fleet_and_its_etag(
    authed: TestClient, ctx: Ctx, worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's page holds the rows /sessions answers, with the ETag that answers 304;
    a fleet that cannot be read leaves the page whole, its rows for the page to ask."""
    page = authed.get("/")
    held = _held(page.text)
    assert page.status_code == 200 and held is not None, page.text[:300]
    tag, rows = held
    assert [r["id"] for r in rows] == ["pulse", worker]
    assert authed.get("/api/v1/sessions", headers={"If-None-Match": tag}).status_code == 304

    def unreadable(*args: object) -> object:
        raise OSError("the sessions folder cannot be listed")

    monkeypatch.setattr(cache, "list_light", unreadable)
    store.atomic_write(ctx.paths.data / "sessions" / worker / "note", "moved")  # read anew
    page = authed.get("/")
    assert page.status_code == 200 and _held(page.text) is None
    assert page.text.rstrip().endswith("</html>") and 'id="fleet"' in page.text
