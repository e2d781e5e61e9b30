"""A worker away from home has its change read where its checkouts are: the web's diff and
review ask its Backend (here a second home standing in for a host, tests/farhost.FarHost,
with a real git checkout made by a real worker), never a host record of their own. The
real SSH host's satellite answering the same is tests/hosts/test_host_change.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from looop.act.moves import far as far_mod
from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.web.app import build_app
from looop.web.auth import Guard
from tests.farhost import FarHost
from tests.integration.workerchange import repo, start, wctx
from tests.web.conftest import ORIGIN, TOKEN

pytestmark = pytest.mark.timeout(90)
__all__ = ["repo", "wctx"]  # the fixtures this module's tests take

FAR = "w9"


@pytest.fixture
def far(wctx: Ctx, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FarHost:
    """w9 worked in a checkout of `repo` on the 'host' (a home of its own, the satellite's
    data dir); the home knows it only by its record (hosts/workers/w9.json)."""
    data = tmp_path / "host"
    data.mkdir()
    hctx = replace(wctx, paths=Paths.at(data))
    hctx.paths.config.write_text(wctx.paths.config.read_text())
    start(hctx, tmp_path, FAR, repo)
    record = wctx.paths.host_record(FAR)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"host": "h9", "over": True}))
    host = FarHost(data, hctx)

    def away(data: str, env: object, clock: object, wid: str, ctx: object = None) -> object:
        return host if wid == FAR else None

    monkeypatch.setattr(far_mod, "worker_away", away)
    return host


@pytest.fixture
def web(wctx: Ctx, guard: Guard) -> Iterator[TestClient]:
    with TestClient(build_app(wctx, guard), base_url=ORIGIN) as c:
        assert c.get(f"/?token={TOKEN}", follow_redirects=False).status_code == 303
        c.headers["Origin"] = ORIGIN
        yield c


def test_a_far_workers_diff_and_review_are_read_through_its_backend(
    web: TestClient, wctx: Ctx, far: FarHost
) -> None:
    assert not (wctx.paths.checkouts / FAR).exists()  # its checkout is on the host only
    r = web.get(f"/api/v1/sessions/{FAR}/diff")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["id"] == FAR and got["cut"] is False
    assert "+committed" in got["diff"] and "+def f(x):" in got["diff"]
    r = web.get(f"/api/v1/workers/{FAR}/review")
    assert r.status_code == 200, r.text
    rv = r.json()
    assert rv["wid"] == FAR and [c["subject"] for c in rv["commits"]] == [
        "add app and a README line"
    ]
    assert {f["path"] for f in rv["files"]} == {"README", "app.py"}
    assert rv["summary"].startswith("I added f")
    assert far.calls.count("diff") == 1 and far.calls.count("review") == 1


def test_a_far_workers_change_out_of_reach_is_said_by_its_kind(
    web: TestClient, wctx: Ctx, far: FarHost
) -> None:
    far.down.set()
    for path in (f"/api/v1/sessions/{FAR}/diff", f"/api/v1/workers/{FAR}/review"):
        r = web.get(path)
        err = r.json()["error"]
        assert r.status_code == 503 and "unreachable" in err and "\n" not in err, r.text
    # drafting on it needs its host, which this home does not know: its line, nothing written
    r = web.post(f"/api/v1/workers/{FAR}/review/comments", json={"text": "hi"})
    assert r.status_code == 409 and "works on host h9" in r.json()["error"], r.text
    assert not (wctx.paths.data / "reviews" / f"{FAR}.json").exists()
