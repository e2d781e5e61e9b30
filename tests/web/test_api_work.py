"""The API behind the dashboard you can work from: goals, a repo worker's diff, starting a
worker, typed text journaled whole, "paused" in the state, the favicon."""

from __future__ import annotations

import contextlib

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.home import store
from looop.sessions.client import kill, wait
from looop.sessions.state import SessionError, get_session
from looop.spend.record import append_costs
from looop.spend.spent import budgets
from tests.clocks import FixedClock
from tests.web.conftest import journal

pytestmark = pytest.mark.timeout(60)


def test_what_is_typed_is_journaled_with_its_text(
    authed: TestClient, ctx: Ctx, worker: str
) -> None:
    base = f"/api/v1/sessions/{worker}"
    assert authed.post(f"{base}/send", json={"text": "run the tests"}).status_code == 200
    r = authed.post(f"{base}/send", json={"text": "half a line", "enter": False})
    assert r.status_code == 200
    text = journal(ctx)
    assert f"web: steer {worker} · run the tests" in text
    assert f"web: typed into {worker} · half a line" in text
    r = authed.post(f"{base}/send", json={"text": "two\nlines"})  # one journal line still
    assert r.status_code == 200
    assert f"web: steer {worker} · two lines\n" in journal(ctx)


def test_goals_are_listed_with_their_text_newest_first(authed: TestClient, ctx: Ctx) -> None:
    for gid, body in (("ship", "v2 is out"), ("docs", "the manual says it")):
        assert authed.post(f"/api/v1/goals/{gid}", json={"body": body}).status_code == 200
    got = {g["id"]: g for g in authed.get("/api/v1/goals").json()}
    assert {"ship", "docs"} <= set(got)  # beside the starter's goals
    for gid, g in got.items():
        assert g["text"] == ctx.paths.goal(gid).read_text() and g["cut"] is False
    order = [g["mtime"] for g in authed.get("/api/v1/goals").json()]
    assert order == sorted(order, reverse=True)


def test_a_worker_without_a_checkout_has_no_diff(authed: TestClient, ctx: Ctx, worker: str) -> None:
    r = authed.get(f"/api/v1/sessions/{worker}/diff")
    assert r.status_code == 409 and "--repo" in r.json()["error"]
    assert authed.get("/api/v1/sessions/..%2Fx/diff").status_code in (400, 404)


def test_starting_a_worker_refuses_bad_bodies_and_leaves_no_trace(
    authed: TestClient, ctx: Ctx
) -> None:
    for body, says in (
        ({"prompt": "go", "repo": "relative/dir"}, "absolute path or a URL"),
        ({"prompt": "go", "repo": ["/src/app", "relative/dir"]}, "absolute path or a URL"),
        ({"prompt": "go", "repo": ["/src/app", "/src/app"]}, "give each repository once"),
        ({"prompt": "go", "repo": ["/src/app", 3]}, "'repo' must be a string"),
        ({"prompt": " "}, "'prompt' is empty"),
        ({"prompt": "go", "runner": 3}, "'runner' must be a string"),
    ):
        r = authed.post("/api/v1/workers/w5", json=body)
        assert r.status_code == 400 and says in r.json()["error"], r.text
    r = authed.post("/api/v1/workers/bad%20id", json={"prompt": "go"})
    assert r.status_code == 400, r.text
    assert journal(ctx) == ""
    assert not (ctx.paths.sessions / "w5").exists()


def test_state_says_paused_after_a_pause_until_the_pulse_starts(
    authed: TestClient, ctx: Ctx
) -> None:
    assert authed.get("/api/v1/state").json()["paused"] is False
    ctx.events.record("down", pulse=True, workers=[], kept=["w1"])  # as a pause records it
    assert authed.get("/api/v1/state").json()["paused"] is True
    ctx.events.record("pulse_start", pid=1)
    assert authed.get("/api/v1/state").json()["paused"] is False
    ctx.events.record("down", pulse=True, workers=[], survivors=[])  # a full `looop down`
    assert authed.get("/api/v1/state").json()["paused"] is False


def test_the_favicon_needs_no_token(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/static/favicon.svg").status_code == 200
    paths = client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer x"})
    assert paths.status_code == 401  # the API itself still asks for the token


def _cat_runner(ctx: Ctx, **knobs: object) -> None:
    """A config whose worker is `cat` (no agent CLI: unmetered, but its budget is kept): it
    shows its brief and stays alive reading its terminal."""
    worker = "cat {{prompt_file}} -"
    cfg = {"default": "r", "runners": {"r": {"tick": "true", "worker": worker}}, **knobs}
    store.write_json(ctx.paths.config, cfg)


def _end(ctx: Ctx, sid: str) -> None:
    with contextlib.suppress(SessionError):  # a refused start left none
        kill(ctx.paths.data, sid)
        wait(ctx.paths.data, sid, 30, FixedClock())


@pytest.mark.process
def test_a_worker_started_with_a_budget_has_it_set_and_journaled(
    authed: TestClient, ctx: Ctx
) -> None:
    _cat_runner(ctx)
    body = {"prompt": "go", "budget_usd": 2.5, "on_budget": "stop"}
    r = authed.post("/api/v1/workers/w5", json=body)
    try:
        assert r.status_code == 200, r.text
        assert get_session(ctx.paths.data, "w5").alive
        # what `worker start --budget 2.5 --on-budget stop` sets: the beat's meter holds it
        assert budgets(str(ctx.paths.data)) == {"w5": (2.5, "stop")}
        assert "web: start-worker w5 · budget $2.50, stop at it" in journal(ctx)
    finally:
        _end(ctx, "w5")


@pytest.mark.process
def test_a_bad_budget_is_refused_in_one_line_and_leaves_no_trace(
    authed: TestClient, ctx: Ctx
) -> None:
    _cat_runner(ctx)
    for raw, says in (
        ('{"prompt": "go", "budget_usd": -1}', "'budget_usd' must be a number of USD above 0"),
        ('{"prompt": "go", "budget_usd": 0}', "'budget_usd' must be a number of USD above 0"),
        ('{"prompt": "go", "budget_usd": "five"}', "'budget_usd' must be a number of USD"),
        ('{"prompt": "go", "budget_usd": true}', "'budget_usd' must be a number of USD"),
        ('{"prompt": "go", "budget_usd": 1e9}', "at most 10000"),
        ('{"prompt": "go", "budget_usd": NaN}', "NaN, which is not a JSON number"),
        ('{"prompt": "go", "budget_usd": 1e999}', "a number too large"),
        ('{"prompt": "go", "budget_usd": 5, "on_budget": "explode"}', "'on_budget'"),
    ):
        r = authed.post(
            "/api/v1/workers/w5", content=raw, headers={"content-type": "application/json"}
        )
        err = r.json().get("error", "")
        assert r.status_code == 400 and says in err and "\n" not in err, (raw, r.text)
    assert journal(ctx) == ""
    assert not (ctx.paths.sessions / "w5").exists()
    assert budgets(str(ctx.paths.data)) == {}


@pytest.mark.process
def test_at_the_daily_budget_the_api_starts_no_worker(authed: TestClient, ctx: Ctx) -> None:
    _cat_runner(ctx, max_daily_usd=1)
    ledger = ctx.paths.cost_ledger
    append_costs(ledger, ctx.clock.now(), "worker", [("w0", "r", 0.6, None)])
    body = {"prompt": "go", "budget_usd": 0.5}
    r = authed.post("/api/v1/workers/w5", json=body)
    try:
        assert r.status_code == 200, r.text  # $0.60 of $1.00: it starts
    finally:
        _end(ctx, "w5")
    append_costs(ledger, ctx.clock.now(), "worker", [("w0", "r", 0.4, None)])
    r = authed.post("/api/v1/workers/w6", json=body)
    assert r.status_code == 409, r.text
    assert "reached the daily budget $1.00" in r.json()["error"]
    assert not (ctx.paths.sessions / "w6").exists()
    assert "w6" not in budgets(str(ctx.paths.data))


@pytest.mark.process
def test_a_start_on_a_config_that_does_not_read_says_so_in_one_line(
    authed: TestClient, ctx: Ctx
) -> None:
    ctx.paths.config.write_text('{"max_daily_usd": "lots"')
    r = authed.post("/api/v1/workers/w5", json={"prompt": "go", "budget_usd": 1})
    err = r.json().get("error", "")
    assert r.status_code == 503 and "config" in err and "\n" not in err, r.text
    assert not (ctx.paths.sessions / "w5").exists()
    assert budgets(str(ctx.paths.data)) == {}
