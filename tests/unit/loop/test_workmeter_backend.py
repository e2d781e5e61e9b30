"""The budgets hold a worker and let it go on through its `Backend`, wherever it runs: a
pause and its going on are backend operations, so a worker on a host is held there and
goes on there too."""

from __future__ import annotations

import pytest

from looop.core.context import Ctx
from looop.home.knobs import Knobs
from looop.loop import workmeter as m
from looop.spend.spent import Spend
from tests.fakebackend import FakeBackend


@pytest.fixture
def way(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()

    def lookup(c: Ctx, wid: str, knobs: Knobs | None = None) -> FakeBackend:
        return fake

    monkeypatch.setattr(m, "backend_for", lookup)
    return fake


@pytest.mark.parametrize(("policy", "op"), [("pause", "pause"), ("stop", "kill")])
def test_a_worker_over_its_budget_is_held_through_its_backend(
    ctx: Ctx, way: FakeBackend, policy: str, op: str
) -> None:
    got = {"w1": Spend("w1", 2.5, "claude", None)}
    assert m.enforce(ctx, None, got, {"w1": (1.0, policy)}) == ["w1"]
    assert way.calls == [("reach", "w1"), (op, "w1")]


def test_a_worker_held_for_the_day_goes_on_through_its_backend(ctx: Ctx, way: FakeBackend) -> None:
    got = {"w1": Spend("w1", 2.5, "claude", None)}
    assert m.hold_to_day(ctx, None, 2.0, 2.5, got) == ["w1"]  # at the daily budget: held
    assert way.calls == [("reach", "w1"), ("pause", "w1")]
    assert m.hold_to_day(ctx, None, 5.0, 2.5, got) == []  # the budget raised: it goes on
    assert way.calls[2:] == [("go_on", "w1")]
    assert "goes on: under the daily budget again" in ctx.events.stream.getvalue()  # type: ignore[attr-defined]


def test_a_worker_its_backend_cannot_reach_is_not_held(ctx: Ctx, way: FakeBackend) -> None:
    way.reach = lambda sid: "unreachable"  # type: ignore[method-assign]
    got = {"w1": Spend("w1", 2.5, "claude", None)}
    assert m.enforce(ctx, None, got, {"w1": (1.0, "pause")}) == []
    assert way.calls == []
