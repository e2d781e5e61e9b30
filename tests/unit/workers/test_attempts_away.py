"""Attempts started on a host (`--attempts` with `--host`): the home knows them by its records
of its workers away, so `review ID`, `land ID --pick N` and the needs-you queue find the group
and read each attempt's state from its host's rows (remote/fleet's), as `looop ls` does."""

from __future__ import annotations

from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.views.needs import needs_at
from looop.workers import attempts


def _away(wid: str, health: str) -> dict[str, Any]:
    return {"id": wid, "alive": True, "state": "running", "health": health, "host": "gpu1"}


@pytest.mark.parametrize("second", ["busy", "needs-input"])
def test_attempts_on_a_host_are_one_group_read_from_their_host(ctx: Ctx, second: str) -> None:
    workers = ctx.paths.data / "hosts" / "workers"
    workers.mkdir(parents=True)
    for n in (1, 2):
        (workers / f"fix.{n}.json").write_text("{}")  # the home's record of each, started away
    rows = [_away("fix.1", "needs-input"), _away("fix.2", second)]

    def far(data: str, clock: Clock, stuck: int, env: dict[str, str] | None) -> list[Any]:
        return [dict(r) for r in rows]

    got = attempts.rows(ctx, "fix", None, far)
    working = second == "busy"
    assert [(r["id"], r["outcome"]) for r in got] == [
        ("fix.1", "waiting"),
        ("fix.2", "running" if working else "waiting"),
    ]
    assert attempts.pick(ctx, "fix", 1, False, far)[0] == "fix.1"
    if working:
        with pytest.raises(LooopError, match=r"attempt fix\.2 is still at work"):
            attempts.pick(ctx, "fix", 2, False, far)
    picks = [n.what for n in needs_at(str(ctx.paths.data), rows) if n.kind == "pick"]
    assert picks == ([] if working else ["2 attempts ended: pick one"])
