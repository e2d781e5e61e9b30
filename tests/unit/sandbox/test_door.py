"""The door's answer before anything runs (sandbox/door.py): the worker is the box's, every
argument is held to it, the verbs are the box's, and what is not one contract request is
refused in one line with its status — nothing of these starts a run."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looop.contract.requests import Home
from looop.core.context import Ctx
from looop.sandbox.door import box_door, home_env


def _body(*argv: str, worker: str | None = None) -> bytes:
    req: dict[str, object] = {"v": 1, "key": "k" * 12, "argv": list(argv)}
    if worker is not None:
        req["worker"] = worker
    return json.dumps(req).encode()


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b"not json", 400, "one JSON object"),
        (b"\xff\xfe", 400, "one JSON object"),
        (_body("told", worker="w2"), 403, "speaks for worker w1 only"),
        (_body("told", "w2"), 403, "only as itself"),
        (_body("claim", "lease", "--session", "w2"), 403, "only for itself"),
        (_body("flag", "w2", "hi"), 403, "only itself"),
        (_body("kill", "w2"), 403, "only itself"),
        (_body("cost", "today"), 403, "reports its cost here"),
        (_body("status"), 400, "not a contract verb"),
        (_body("answer", "w1-1", "yes"), 400, "not a contract verb"),
    ],
)
def test_what_the_door_refuses_before_anything_runs(
    ctx: Ctx, body: bytes, status: int, said: str
) -> None:
    door = box_door(Home.of(ctx), lambda w: w == "w1")
    got, answer = door("w1", body)
    assert got == status
    line = json.loads(answer)["error"]
    assert said in line and "\n" not in line


def test_a_worker_whose_box_ended_speaks_no_more(ctx: Ctx) -> None:
    door = box_door(Home.of(ctx), lambda w: False)
    got, answer = door("w1", _body("told"))
    assert got == 403 and "box has ended" in json.loads(answer)["error"]


def test_the_homes_environment_is_taken_back_from_a_workers() -> None:
    worker = {
        "LOOOP_DOOR": "1",
        "LOOOP_SESSION_ID": "w1",
        "LOOOP_CONFIG": "/d/sandbox/w1/config.json",
        "LOOOP_HOME_CONFIG": "/d/config.json",
        "LOOOP_WORKSPACE": "/d.work/rooms/w1/work",
        "PATH": "/bin",
    }
    assert home_env(worker) == {"LOOOP_CONFIG": "/d/config.json", "PATH": "/bin"}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # nothing it writes
@given(st.binary(max_size=512))
def test_any_bytes_at_the_door_get_a_refusal_in_one_line(ctx: Ctx, body: bytes) -> None:
    door = box_door(Home.of(ctx), lambda w: w == "w1")
    status, answer = door("w1", body)
    assert status in (400, 403, 413)
    line = json.loads(answer)["error"]
    assert isinstance(line, str) and "\n" not in line


@given(st.text(max_size=200))
def test_any_proxy_url_is_a_proxy_or_one_line(url: str) -> None:
    from looop.remote.boxdoor import Proxy

    try:
        p = Proxy({"HTTP_PROXY": url})
    except ValueError as e:
        assert "no proxy to reach looop's door" in str(e)
    else:
        assert p.host and p.port >= 0 and p.auth.startswith("Basic ")
