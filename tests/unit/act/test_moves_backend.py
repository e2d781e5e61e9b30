"""Each move that drives a running worker reaches it through `far.backend_for`, the one
lookup, whatever engine runs it."""

from __future__ import annotations

from typing import Any

import pytest

from looop.act.executor import execute
from looop.act.moves import far
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.knobs import Knobs
from tests.fakebackend import FakeBackend


@pytest.mark.parametrize(
    ("obj", "call"),
    [
        (
            {"action": "steer_session", "id": "w1", "input": "go on"},
            [("send", "w1", "go on\r", False)],  # Enter after its echo: sessions/client.send
        ),
        (
            {"action": "send_key", "id": "w1", "keys": ["C-c", "Enter"]},
            [("key", "w1", ["C-c", "Enter"])],
        ),
        ({"action": "restart_session", "id": "w1"}, [("restart", "w1")]),
    ],
)
def test_a_move_drives_its_worker_through_the_backend_it_is_given(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, obj: dict[str, Any], call: list[tuple[Any, ...]]
) -> None:
    way = FakeBackend()
    asked: list[str] = []

    def lookup(c: Ctx, wid: str, knobs: Knobs | None = None) -> FakeBackend:
        asked.append(wid)
        return way

    monkeypatch.setattr(far, "backend_for", lookup)
    done = execute(ctx, ctx.knobs(), decision_from_obj(obj), actor="cli")
    assert asked == ["w1"]
    assert way.calls == call
    assert done.summary.startswith(("steer w1", "key w1", "restart w1"))
