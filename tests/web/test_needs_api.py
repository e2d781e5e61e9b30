"""The needs-you queue on the web: /api/v1/needs is `looop needs --json`, one item per thing
waiting on a human with the command that answers it; answered, the item is gone."""

from __future__ import annotations

from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.human.mailbox import answer, new_ask


def test_the_web_shows_the_queue_and_an_answered_ask_leaves_it(
    authed: TestClient, ctx: Ctx
) -> None:
    p = ctx.paths
    assert authed.get("/api/v1/needs").json() == []
    ask = new_ask(p.asks, p.answers, "w1", "ship it?", None, ["yes", "no"], ctx.clock.now())
    got = authed.get("/api/v1/needs").json()
    assert [(n["kind"], n["worker"], n["answer"]) for n in got] == [
        ("ask", "w1", f"looop answer {ask['id']} yes")
    ]
    assert "ship it?" in got[0]["what"] and got[0]["since"] == int(ctx.clock.now())
    answer(p.asks, p.answers, ask["id"], "yes", ctx.clock.now())
    assert authed.get("/api/v1/needs").json() == []
    assert "/api/v1/needs" in authed.get("/api/v1/openapi.json").json()["paths"]
