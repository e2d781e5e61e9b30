"""MCP's `looop://needs`: the same queue as `looop needs --json`."""

from __future__ import annotations

import json

from mcp import ClientSession

from looop.core.context import Ctx
from looop.human.mailbox import answer, new_ask
from tests.integration.test_mcp import drive


def test_the_needs_resource_lists_a_pending_ask_until_it_is_answered(ctx: Ctx) -> None:
    p = ctx.paths

    async def read(s: ClientSession) -> list[dict[str, object]]:
        got = json.loads((await s.read_resource("looop://needs")).contents[0].text)
        assert isinstance(got, list)
        return got

    async def body(s: ClientSession) -> None:
        uris = {str(r.uri) for r in (await s.list_resources()).resources}
        assert "looop://needs" in uris
        assert await read(s) == []
        ask = new_ask(p.asks, p.answers, "w1", "merge it?", None, [], ctx.clock.now())
        items = await read(s)
        assert [(i["kind"], i["worker"], i["answer"]) for i in items] == [
            ("ask", "w1", f"looop answer {ask['id']} TEXT")
        ]
        answer(p.asks, p.answers, ask["id"], "yes", ctx.clock.now())
        assert await read(s) == []

    drive(ctx, body)
