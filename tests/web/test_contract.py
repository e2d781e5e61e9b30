"""POST /api/v1/contract through the real ASGI app: a worker away from home speaks its
contract with its own token and nothing else does — not the human's token, not another
worker's, not a worker that is over — and a long ask answers 202 until it is answered."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.human.mailbox import answer, pending
from looop.remote import hosts, tokens
from looop.web.app import build_app
from looop.web.auth import Guard
from tests.helpers import wait_until
from tests.web.conftest import ORIGIN, TOKEN

pytestmark = pytest.mark.timeout(60)

LOOOP = str(Path(sys.executable).with_name("looop"))
ROUTE = "/api/v1/contract"


@pytest.fixture
def home(ctx: Ctx) -> Ctx:
    for wid in ("pw1", "pw2"):
        hosts.write_record(ctx.paths.data, wid, "k8s-a", over=False)
    return replace(ctx, bin=LOOOP, env={**ctx.env, "LOOOP_ASK_POLL_MS": "50"})


@pytest.fixture
def web(home: Ctx, guard: Guard) -> Iterator[TestClient]:
    with TestClient(build_app(home, guard, contract_wait_s=0.5), base_url=ORIGIN) as c:
        yield c


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _req(*argv: str, worker: str = "pw1", key: str = "key-000001") -> dict[str, Any]:
    return {"v": 1, "key": key, "worker": worker, "argv": list(argv), "stdin": None}


def _call(web: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """POST a request, and again with the same key while it answers 202 (the verb outlived
    the route's short wait on a busy machine): as a worker away from home retries."""
    deadline = time.monotonic() + 30
    r = web.post(ROUTE, headers=headers, json=body)
    while r.status_code == 202 and time.monotonic() < deadline:
        r = web.post(ROUTE, headers=headers, json=body)
    return r


def _ledger(home: Ctx) -> list[dict[str, Any]]:
    p = home.paths.cost_ledger
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_a_worker_token_speaks_its_own_contract(web: TestClient, home: Ctx) -> None:
    tok = tokens.mint(home.paths, "pw1")
    r = _call(web, _as(tok), _req("cost", "report", "session", "pw1", "sh", "2"))
    assert r.status_code == 200, r.text
    assert r.json() == {"out": "recorded $2 for session pw1 (sh)\n", "err": "", "code": 0}
    r = _call(web, _as(tok), _req("claim", "lease-a", key="key-000002"))
    assert r.json()["code"] == 0
    assert json.loads((home.paths.claims / "lease-a.json").read_text())["session"] == "pw1"
    # a verb the home says no to is an answer like any other: its code and line
    r = _call(web, _as(tok), _req("cost", "report", "s", "pw1", "r", "nope", key="key-000003"))
    assert r.status_code == 200 and r.json()["code"] != 0 and "nope" in r.json()["err"]
    assert len(_ledger(home)) == 1


def test_a_worker_token_is_only_its_own_workers(web: TestClient, home: Ctx) -> None:
    tok = tokens.mint(home.paths, "pw1")
    r = web.post(ROUTE, headers=_as(tok), json=_req("claim", "lease-a", worker="pw2"))
    assert r.status_code == 401 and "pw2" in r.json()["error"]
    tokens.rotate(home.paths)  # a new key voids every token handed out
    r = _call(web, _as(tok), _req("claim", "lease-a"))
    assert r.status_code == 401
    assert not home.paths.claims.exists()


def test_a_worker_token_opens_nothing_else(web: TestClient, home: Ctx, worker: str) -> None:
    tok = tokens.mint(home.paths, "pw1")
    for method, path in (
        ("GET", "/api/v1/state"),
        ("GET", "/api/v1/asks"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", f"/api/v1/sessions/{worker}/screen"),
        ("POST", f"/api/v1/sessions/{worker}/kill"),
        ("POST", "/api/v1/asks/pw1-1/answer"),
        ("GET", ROUTE),
        ("POST", ROUTE + "/"),
        ("GET", "/"),
    ):
        r = web.request(method, path, headers=_as(tok), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert "contract" in r.json()["error"], path
    # nor does one in the query or a cookie, where a browser would carry a token
    assert web.post(f"{ROUTE}?token={tok}", json=_req("told")).status_code == 401
    r = web.post(ROUTE, json=_req("told"), headers={"Cookie": f"looop_web_80={tok}"})
    assert r.status_code == 401


def test_the_human_token_is_no_worker(web: TestClient, authed: TestClient) -> None:
    r = web.post(ROUTE, headers=_as(TOKEN), json=_req("told"))
    assert r.status_code == 401 and "worker's own token" in r.json()["error"]
    r = authed.post(ROUTE, json=_req("told"))  # a logged-in browser, same Origin
    assert r.status_code == 401


def test_only_a_worker_away_from_home_and_not_over_may_speak(web: TestClient, home: Ctx) -> None:
    stranger = tokens.mint(home.paths, "local-w")  # a token, but no record: not started away
    r = web.post(ROUTE, headers=_as(stranger), json=_req("told", worker="local-w"))
    assert r.status_code == 403 and "away from home" in r.json()["error"]
    hosts.mark_over(home.paths.data, "pw1", 0)
    r = _call(web, _as(tokens.mint(home.paths, "pw1")), _req("told"))
    assert r.status_code == 403 and "over" in r.json()["error"]


def test_bad_requests_are_one_line_each(web: TestClient, home: Ctx) -> None:
    h = {**_as(tokens.mint(home.paths, "pw1")), "Content-Type": "application/json"}
    for body, status in (
        (b"not json", 400),
        (b"[1]", 400),
        (json.dumps({**_req("told"), "v": 2}).encode(), 400),
        (json.dumps(_req("status")).encode(), 400),
        (json.dumps(_req("told", key="x")).encode(), 400),
        (json.dumps(_req("told", "pw2")).encode(), 403),
        (json.dumps({**_req("told"), "stdin": "x" * (70 << 10)}).encode(), 413),
    ):
        r = web.post(ROUTE, headers=h, content=body)
        assert r.status_code == status, (body[:40], r.text)
        assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]


def test_a_worker_token_with_a_foreign_origin_is_refused(web: TestClient, home: Ctx) -> None:
    h = {**_as(tokens.mint(home.paths, "pw1")), "Origin": "http://evil.example"}
    assert web.post(ROUTE, headers=h, json=_req("claim", "x")).status_code == 403
    h["Origin"] = ORIGIN
    assert _call(web, h, _req("claim", "x")).json()["code"] == 0


def test_a_long_ask_answers_pending_until_a_human_answers(web: TestClient, home: Ctx) -> None:
    h = _as(tokens.mint(home.paths, "pw1"))
    req = _req("ask", "--prompt", "which colour?", "--options", "red,blue")
    r = web.post(ROUTE, headers=h, json=req)
    assert r.status_code == 202 and r.json() == {"pending": True}
    r = web.post(ROUTE, headers=h, json=req)  # the same key: the same ask, still waiting
    assert r.status_code == 202
    # the ask is written by the verb the 202 left running: on a loaded machine, after it
    wait_until(lambda: pending(home.paths.asks, home.paths.answers), 30, "the ask written")
    asks = pending(home.paths.asks, home.paths.answers)
    assert [a["id"] for a in asks] == ["pw1-1"] and asks[0]["prompt"] == "which colour?"
    answer(home.paths.asks, home.paths.answers, "pw1-1", "blue", home.clock.now())
    for _ in range(40):  # each call waits up to 0.5 s: the answer comes within the deadline
        r = web.post(ROUTE, headers=h, json=req)
        if r.status_code == 200:
            break
    assert r.status_code == 200
    got = r.json()
    assert (got["out"], got["code"]) == ("blue\n", 0) and "pw1-1" in got["err"]
    assert web.post(ROUTE, headers=h, json=req).json()["out"] == "blue\n"  # kept for a retry
    assert pending(home.paths.asks, home.paths.answers) == []
    assert sorted(p.name for p in home.paths.asks.rglob("pw1-*.json")) == ["pw1-1.json"]


def test_the_route_is_in_the_openapi_listing(authed: TestClient) -> None:
    doc = authed.get("/api/v1/openapi.json").json()
    assert "post" in doc["paths"][ROUTE]
