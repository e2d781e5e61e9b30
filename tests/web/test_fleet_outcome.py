"""The web's fleet row says how an ended worker ended: app.js's own `cause` (run in node, as the
browser would) puts the outcome the API gives before the session's words."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from starlette.testclient import TestClient

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
