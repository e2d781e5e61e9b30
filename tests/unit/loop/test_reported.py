"""A worker no CLI record meters spends what it reports (loop/reported.py): its own ledger
rows since its start count, nobody else's and none from before; a quiet ledger is not read
again."""

from __future__ import annotations

import os
from typing import Any

from looop.core.context import Ctx
from looop.loop.clirecords import reported
from looop.spend.record import append_cost


def test_a_worker_spends_what_it_reported_since_its_start(ctx: Ctx) -> None:
    data = os.fspath(ctx.paths.data)
    ledger = os.path.join(data, "cost.jsonl")
    t = ctx.clock.now()
    append_cost(ledger, t - 100, "worker", "cw", "custom", 1.0)  # an earlier worker of its id
    append_cost(ledger, t + 5, "worker", "cw", "custom", 0.004)
    append_cost(ledger, t + 6, "session", "other", "custom", 0.5)  # someone else's
    state: dict[str, Any] = {}
    got, moved = reported(data, state, {"cw": t})
    assert (got, moved) == ({"cw": 4000}, True)
    assert reported(data, state, {"cw": t}) == ({"cw": 4000}, False)  # the ledger is as it was
    append_cost(ledger, t + 9, "worker", "cw", "custom", 0.05)
    assert reported(data, state, {"cw": t}) == ({"cw": 54000}, True)
    assert reported(data, state, {}) == ({}, True)  # no such worker left: its count goes
    assert "reported" not in state
