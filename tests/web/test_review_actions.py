"""The review's actions over the API, through the CLI's own functions on real git and a real
worker session: a comment on a line and on the whole change drafted, the round sent (an ended
worker resumed with it), the change landed (journaled as approved from the web), a conflict
answered as one line with the comment to send back, and every bad field refused before
anything is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.sessions.client import wait
from looop.web.app import build_app
from looop.web.auth import Guard
from tests.helpers import kill_sessions
from tests.integration.workerchange import (
    LATER,
    commits_later,
    git,
    repo,
    start,
    wctx,
    with_origin,
)
from tests.web.conftest import ORIGIN, TOKEN

pytestmark = pytest.mark.timeout(90)
__all__ = ["repo", "wctx"]  # the fixtures this module's tests take


@pytest.fixture
def web(wctx: Ctx, guard: Guard) -> Iterator[TestClient]:
    """The app on the review home, logged in as a browser is (cookie, same Origin)."""
    with TestClient(build_app(wctx, guard), base_url=ORIGIN) as c:
        assert c.get(f"/?token={TOKEN}", follow_redirects=False).status_code == 303
        c.headers["Origin"] = ORIGIN
        yield c


def rounds(c: Ctx, wid: str) -> list[dict[str, Any]]:
    path = c.paths.data / "reviews" / f"{wid}.json"
    return json.loads(path.read_text())["rounds"] if path.exists() else []


def journal(c: Ctx) -> str:
    return c.paths.journal.read_text() if c.paths.journal.exists() else ""


def test_comment_send_and_land_from_the_web(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w1", repo)
    url = "/api/v1/workers/w1"
    r = web.post(f"{url}/review/comments", json={"file": "app.py", "line": 2, "text": "x + 1?"})
    assert r.status_code == 200, r.text
    r = web.post(f"{url}/review/comments", json={"text": "add a test"})
    assert r.json() == {"ok": True, "round": 1, "comments": 2}
    (draft,) = rounds(wctx, "w1")
    got = [(c["file"], c["line"], c["text"]) for c in draft["comments"]]
    assert got == [("app.py", 2, "x + 1?"), ("", 0, "add a test")]
    assert web.get(f"{url}/review").json()["rounds"][0]["sent"] == ""  # a draft, shown

    r = web.post(f"{url}/review/send", json={})
    assert r.status_code == 200, r.text
    assert r.json()["round"] == 1 and r.json()["how"].startswith("resumed")
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0  # the resumed run writes it, then ends
    told = (tmp_path / "resumed.txt").read_text()  # the ended worker resumed with the round
    assert "app.py:2: x + 1?" in told and "the whole change: add a test" in told
    assert "web: sent review round 1 to w1 (2 comment(s)" in journal(wctx)
    r = web.post(f"{url}/review/send", json={})
    assert r.status_code == 409 and "no comments to send" in r.json()["error"]

    tip = git(repo, "rev-parse", "looop/w1").strip()
    assert web.get(f"{url}/review").json()["tip"] == tip  # what the page shows lands
    r = web.post(f"{url}/land", json={"mode": "ff", "at": tip})
    assert r.status_code == 200, r.text
    assert r.json()["commit"] == tip and git(repo, "rev-parse", "main").strip() == tip
    line = journal(wctx).splitlines()[-1]
    assert "user (web): landed worker w1: looop/w1 into main as fast-forward" in line
    assert web.get(f"{url}/review").json()["landed"] == f"landed into main at {tip[:12]}"
    r = web.post(f"{url}/land", json={"at": {"": tip}})
    assert r.status_code == 409 and "nothing to land" in r.json()["error"]


def test_a_conflict_is_one_line_with_the_comment_to_send_back(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    (repo / "README").write_text("hello\nthe user's line\n")
    git(repo, "commit", "-qam", "a conflicting line")
    old = git(repo, "rev-parse", "main")
    tip = git(repo, "rev-parse", "looop/w2").strip()
    r = web.post("/api/v1/workers/w2/land", json={"mode": "merge", "at": tip})
    assert r.status_code == 409
    got = r.json()
    assert got["error"] == "worker w2's branch conflicts with main in README"
    assert got["conflict"] == "merge main into your branch: conflicts in README"
    assert git(repo, "rev-parse", "main") == old  # nothing landed
    r = web.post("/api/v1/workers/w2/review/comments", json={"text": got["conflict"]})
    assert r.status_code == 200 and rounds(wctx, "w2")[0]["comments"]


@pytest.mark.parametrize(
    ("path", "body", "status", "said"),
    [
        ("review/comments", {"file": "app.py", "text": "no line"}, 400, "field 'line'"),
        ("review/comments", {"file": "app.py", "line": True, "text": "t"}, 400, "field 'line'"),
        ("review/comments", {"line": 3, "text": "no file"}, 400, "needs its 'file'"),
        ("review/comments", {"file": "nope.py", "line": 1, "text": "t"}, 400, "not part of"),
        ("review/comments", {"file": "app.py", "line": 99, "text": "t"}, 400, "has 2 lines"),
        ("review/comments", {"text": "   "}, 400, "needs some text"),
        ("review/comments", {"text": "x" * 5000}, 400, "keep it under"),
        ("review/comments", {"text": 7}, 400, "must be a string"),
        ("review/send", {}, 409, "no comments to send"),
        ("land", {"mode": "rebase", "at": "TIP"}, 400, "field 'mode'"),
        ("land", {"into": "looop/w3", "at": "TIP"}, 409, "worker's own branch"),
        ("land", {}, 400, "field 'at' must be the tip the review showed"),
        ("land", {"at": 7}, 400, "field 'at'"),
        ("land", {"at": {"": 7}}, 400, "field 'at'"),
        ("land", {"at": "--all"}, 409, "'--all' is no commit's SHA"),
        ("land", {"at": {"api": "TIP"}}, 409, "no review you saw names the tip"),
    ],
)
def test_bad_requests_are_one_line_and_write_nothing(
    web: TestClient,
    wctx: Ctx,
    repo: Path,
    tmp_path: Path,
    path: str,
    body: dict[str, object],
    status: int,
    said: str,
) -> None:
    start(wctx, tmp_path, "w3", repo)
    main = git(repo, "rev-parse", "main")
    tip = git(repo, "rev-parse", "looop/w3").strip()
    body = json.loads(json.dumps(body).replace("TIP", tip))
    r = web.post(f"/api/v1/workers/w3/{path}", json=body)
    assert r.status_code == status, r.text
    assert said in r.json()["error"] and "\n" not in r.json()["error"]
    assert rounds(wctx, "w3") == [] and git(repo, "rev-parse", "main") == main
    assert "w3" not in journal(wctx)


AT = {"at": "a" * 40}


def test_no_worker_no_origin_and_a_remote_worker_are_refused(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    for route, body in (("review/comments", {"text": "hi"}), ("review/send", {}), ("land", AT)):
        r = web.post(f"/api/v1/workers/nobody/{route}", json=body)  # as GET .../review answers
        assert r.status_code == 404 and "no worker 'nobody'" in r.json()["error"], route
    assert web.get("/api/v1/workers/nobody/review").status_code == 404
    r = web.post("/api/v1/workers/..%2Fx/land", json=AT)
    assert r.status_code in (400, 404)
    start(wctx, tmp_path, "w5", repo)
    del web.headers["Origin"]  # the cookie alone (another site's form) is never enough
    assert web.post("/api/v1/workers/w5/land", json=AT).status_code == 403
    far = wctx.paths.data / "hosts" / "workers"  # w6 works on host h9: its checkout is there
    far.mkdir(parents=True)
    (far / "w6.json").write_text('{"host": "h9"}')
    web.headers["Origin"] = ORIGIN
    r = web.post("/api/v1/workers/w6/review/comments", json={"text": "hi"})
    assert r.status_code == 409 and "works on host h9" in r.json()["error"]
    assert rounds(wctx, "w6") == [] and rounds(wctx, "w5") == []


def test_land_as_a_pull_request_answers_its_url(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    bare = with_origin(tmp_path, repo, "origin.git")
    opener = tmp_path / "open-pr"  # a stand-in for gh: says where the PR is, records argv
    opener.write_text(f"#!/bin/sh\necho \"$@\" > '{tmp_path}/pr.argv'\necho https://forge/pr/9\n")
    opener.chmod(0o755)
    obj = json.loads(wctx.paths.config.read_text())
    obj["land"] = {"pr_command": f"{opener} --head {{branch}} --base {{base}}"}
    wctx.paths.config.write_text(json.dumps(obj))
    start(wctx, tmp_path, "w6", repo)
    tip = git(repo, "rev-parse", "looop/w6").strip()
    r = web.post("/api/v1/workers/w6/land", json={"mode": "pr", "at": tip})
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "pr" and r.json()["url"] == "https://forge/pr/9"
    assert git(bare, "rev-parse", "refs/heads/looop/w6").strip() == tip
    assert (tmp_path / "pr.argv").read_text().split() == ["--head", "looop/w6", "--base", "main"]
    assert "user (web): proposed worker w6" in journal(wctx) and "pr/9" in journal(wctx)
    assert web.get("/api/v1/workers/w6/review").json()["landed"] == ""  # a PR open: not yet


def test_a_proposed_landing_shows_in_the_review_and_the_web_land_answers_it(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w6", repo)
    move = {"action": "propose_land", "id": "w6", "reason": "verify passed"}
    execute(wctx, wctx.knobs(), decision_from_obj(move))
    url = "/api/v1/workers/w6"
    proposal = web.get(f"{url}/review").json()["proposal"]
    assert proposal["ask"] == "w6-1" and proposal["reason"] == "verify passed"
    needs = web.get("/api/v1/needs").json()
    assert [n["answer"] for n in needs if n["ref"] == "w6-1"] == ["looop land w6"]
    tip = web.get(f"{url}/review").json()["tip"]
    r = web.post(f"{url}/land", json={"mode": "ff", "at": tip})
    assert r.status_code == 200, r.text
    answered = json.loads((wctx.paths.answers / "w6-1.json").read_text())["answer"]
    assert answered == f"landed: main at {r.json()['commit']}"
    assert web.get(f"{url}/review").json()["proposal"] is None
    assert "answered the landing proposal" not in journal(wctx)  # an answer is no move (RULE 1)


def test_a_stale_tip_is_refused_with_how_many_commits_are_new(
    web: TestClient, wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w7", repo, tail=LATER.format(go=tmp_path / "go", done=tmp_path / "done"))
    try:
        url = "/api/v1/workers/w7"
        shown = web.get(f"{url}/review").json()["tip"]
        main = git(repo, "rev-parse", "main")
        commits_later(tmp_path)  # the live worker commits after the page drew its change
        r = web.post(f"{url}/land", json={"mode": "ff", "at": shown})
        assert r.status_code == 409, r.text
        said = r.json()["error"]
        assert "has 1 new commit(s) since the review you approved" in said and "\n" not in said
        assert git(repo, "rev-parse", "main") == main and "landed" not in journal(wctx)
        now = web.get(f"{url}/review").json()["tip"]  # reloaded: the new commit is shown
        r = web.post(f"{url}/land", json={"mode": "ff", "at": now})
        assert r.status_code == 200 and (repo / "backdoor.sh").exists()
    finally:
        kill_sessions(wctx.paths.data)
