"""The web's fleet row says how an ended worker ended: app.js's own `cause` (run in node, as the
browser would) puts the outcome the API gives before the session's words."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from starlette.testclient import TestClient

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.views import outcomes

pytestmark = pytest.mark.timeout(60)


def _function(js: str, name: str) -> str:
    start = js.index(f"function {name}(")
    return js[start : js.index("\n}\n", start) + 2]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the dashboard's script")
def test_an_ended_workers_row_shows_its_outcome(authed: TestClient) -> None:
    js = authed.get("/static/app.js").text
    code = _function(js, "cause") + _function(js, "endedHow")
    rows = [
        {"state": "exited", "exit_code": 1, "outcome": "failed_verify"},
        {"state": "killed", "exit_code": 137, "signaled": True, "outcome": "over_budget"},
        {"state": "exited", "exit_code": 0, "outcome": None},
    ]
    prog = code + f"for (const r of {json.dumps(rows)}) console.log(cause(r));"
    out = subprocess.run(
        ["node", "-e", prog], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    assert out == [
        "failed verify · exited · exit 1",
        "over budget · killed · signal 9",
        "exited · exit 0",
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the dashboard's script")
def test_an_archived_goal_says_why_on_the_goals_card(authed: TestClient, ctx: Ctx) -> None:
    """The goals card lists the archived goals from GET /goals/archived, each with why, how
    its worker ended and who archived it (app.js's own `archivedWhy`, run in node)."""
    authed.post("/api/v1/goals/ship", json={"body": "v2 is out"})
    authed.post("/api/v1/goals/tidy", json={"body": "tidy up"})
    end = outcomes.End("exited", 0, landed=True)
    outcomes.write_record(
        str(ctx.paths.data), outcomes.next_record(None, "ship", "g1", end, 3, "g1-end")
    )
    for gid, reason, actor in (("ship", "done", "pulse"), ("tidy", "dropped", "web:phone")):
        move = decision_from_obj({"action": "archive_goal", "id": gid, "reason": reason})
        execute(ctx, ctx.knobs(), move, actor=actor)
    rows = authed.get("/api/v1/goals/archived").json()
    html = authed.get("/").text
    assert 'id="goals-archived"' in html
    js = authed.get("/static/app.js").text
    assert '["/goals/archived", renderArchived]' in js
    prog = _function(js, "archivedWhy") + f"for (const g of {json.dumps(rows)}) "
    prog += "console.log(g.id + ': ' + archivedWhy(g));"
    out = subprocess.run(
        ["node", "-e", prog], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    assert sorted(out) == [
        "ship: done · its worker landed · by decider",
        "tidy: dropped · by web:phone",
    ]


def test_a_human_clears_a_stall_from_the_web_and_it_leaves_the_queue(
    authed: TestClient, ctx: Ctx
) -> None:
    """POST /workers/ID/unstall clears the stall (journaled as the web's), takes it off
    GET /needs, and says 409 the second time; a bad id is a 404, nothing written."""
    data = str(ctx.paths.data)
    fail, rec = outcomes.End("exited", 2, last_line="Error: no config"), None
    for g in ("g1", "g2", "g3"):
        rec = outcomes.next_record(rec, "flaky", g, fail, 3, "2027-01-15T08:00:00.000Z")
    outcomes.write_record(data, rec)
    needs = authed.get("/api/v1/needs").json()
    assert [n["answer"] for n in needs if n["kind"] == "stalled"] == ["looop worker unstall flaky"]
    r = authed.post("/api/v1/workers/flaky/unstall", json={})
    assert r.status_code == 200 and "3 times" in r.json()["was"], r.text
    assert outcomes.stalled(data, "flaky") is None
    assert not [n for n in authed.get("/api/v1/needs").json() if n["kind"] == "stalled"]
    journal = ctx.paths.journal.read_text()
    assert "web: cleared worker flaky's stall (it was: the same failure 3 times" in journal
    again = authed.post("/api/v1/workers/flaky/unstall", json={})
    assert again.status_code == 409 and "is not stalled" in again.json()["error"]
    bad = authed.post("/api/v1/workers/..%2Fx/unstall", json={})
    assert bad.status_code in (400, 404)
    assert ctx.paths.journal.read_text() == journal
