"""`looop watch`'s status line counts what waits on the human (the needs-you queue) when more
than the asks wait: a worker at its approval prompt here, one over budget on a host."""

from __future__ import annotations

from looop.core.context import Ctx
from looop.human.mailbox import new_ask
from looop.tui.statusline import status_left


def test_the_watch_line_says_how_many_need_you(ctx: Ctx) -> None:
    p = ctx.paths
    assert "need you" not in status_left(ctx, None, [])
    new_ask(p.asks, p.answers, "w1", "ship?", None, [], ctx.clock.now())
    assert "1 ask" in status_left(ctx, None, []) and "need you" not in status_left(ctx, None, [])
    rows = [
        {"id": "w2", "health": "needs-input", "needs_input": "approval: Do you want to run x?"},
        {"id": "w3", "health": "over budget", "host": "gpu1"},
        {"id": "w4", "health": "busy"},
    ]
    assert "3 need you (looop needs)" in status_left(ctx, None, rows)
