"""GET /api/v1/workers/{id}/review: the same review `looop review --json` prints, read by the
one core function (real git, a real worker session); a worker with no change is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.sessions.client import wait
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.integration.workerchange import WORK, git, new_repo

pytestmark = pytest.mark.timeout(60)


def test_the_review_is_served_as_json(authed: TestClient, ctx: Ctx, tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", "hello\n", "start")
    script = tmp_path / "work.sh"
    script.write_text(WORK.format(wid="r1", tail=""))
    req = StartRequest(
        "r1", "work", command=f"bash '{script}' # {{{{prompt_file}}}}", repo=str(repo)
    )
    start_worker(ctx, ctx.knobs(), req)
    assert wait(ctx.paths.data, "r1", 30, ctx.clock) == 0
    r = authed.get("/api/v1/workers/r1/review")
    assert r.status_code == 200, r.text
    got = r.json()
    assert [c["subject"] for c in got["commits"]] == ["add app and a README line"]
    assert {f["path"] for f in got["files"]} == {"README", "app.py"}
    assert got["tip"] == git(repo, "rev-parse", "looop/r1").strip()
    assert "I added f" in got["summary"] and got["rounds"] == []
    json.dumps(got)  # plain JSON all the way down
    r = authed.get("/api/v1/workers/nobody/review")
    assert r.status_code == 404 and "no worker 'nobody'" in r.json()["error"]  # as its screen
    assert authed.get("/api/v1/workers/..%2Fx/review").status_code in (400, 404)
