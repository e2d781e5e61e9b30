"""The human is told once as each thing joins the needs-you queue (human/notify): a screen
that waits, a usage limit, a bound's pause, a held start, here or on a host; never again on
the next beat; asks and spend budgets are told where they happen, not twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.core.readings import Reading
from looop.human import notify as needstold
from looop.human.mailbox import new_ask
from looop.spend import usagewindows as uw
from looop.views.needs import worker_needs
from looop.workers import needsinput

Told = list[tuple[str, str, str]]


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> Told:
    """Every notification sent: (kind, id, message)."""
    got: Told = []

    def fake(ctx: Ctx, message: str, notify_id: str = "", kind: str = "", cfg: Any = None) -> None:
        got.append((kind, notify_id, message))

    monkeypatch.setattr(needstold, "notify", fake)
    return got


def _refs(data: str, rows: list[dict[str, Any]]) -> list[str]:
    return [n.ref for n in needstold.to_tell(data, worker_needs(rows))]


def test_each_entry_is_told_once_until_it_leaves_the_queue(tmp_path: Path) -> None:
    data = str(tmp_path)
    waiting = [{"id": "w1", "health": "needs-input", "needs_input": "idle: ❯"}]
    assert _refs(data, waiting) == ["w1:idle"]
    assert _refs(data, waiting) == []  # the next beat, a redraw: nothing new
    assert _refs(data, [{"id": "w1", "health": "busy"}]) == []  # it left the queue
    assert _refs(data, waiting) == ["w1:idle"]  # entered again: told again
    (tmp_path / needstold.TOLD).write_text("{torn")
    assert _refs(data, waiting) == ["w1:idle"]  # a lost latch: once more
    # the same worker then at its usage limit, then its approval prompt: each a new entry
    limited = [{"id": "w1", "health": "limited until 14:05"}]
    assert _refs(data, limited) == ["w1:limited"]
    assert _refs(data, limited) == []
    approval = [{"id": "w1", "health": "needs-input", "needs_input": "approval: Do you"}]
    assert _refs(data, approval) == ["w1:approval"]
    assert _refs(data, []) == [] and not (tmp_path / needstold.TOLD).exists()


def test_every_kind_joining_the_queue_is_told_once_with_its_answer(ctx: Ctx, told: Told) -> None:
    rows = [
        {"id": "w1", "health": "needs-input", "needs_input": "approval: Allow rm -rf build?"},
        {"id": "far", "health": "needs-input", "needs_input": "idle: ❯", "host": "gpu1"},
        {"id": "w2", "health": "limited until 14:05"},
        {"id": "w3", "health": "over disk limit"},
        {"id": "w4", "health": "scheduled until 15:00", "note": "account claude is limited"},
        {"id": "w5", "health": "busy"},
    ]
    assert needstold.tell_needs(ctx, None, rows) == 5
    assert needstold.tell_needs(ctx, None, rows) == 0  # the next beat says nothing
    by_id = {i: (kind, msg) for kind, i, msg in told}
    assert set(by_id) == {"w1", "far", "w2", "w3", "w4"}
    assert by_id["w1"][0] == "needs-input" and "rm -rf build" in by_id["w1"][1]
    assert "answer: looop attach w1" in by_id["w1"][1]
    assert "far@gpu1" in by_id["far"][1] and "looop send far TEXT" in by_id["far"][1]
    assert by_id["w2"][0] == "limited" and "14:05" in by_id["w2"][1]
    assert by_id["w3"][0] == "budget" and "disk" in by_id["w3"][1]
    assert "looop worker continue w3 --budget USD" in by_id["w3"][1]
    assert by_id["w4"][0] == "held" and "15:00" in by_id["w4"][1]
    recorded = [json.loads(ln) for ln in Path(ctx.paths.events).read_text().splitlines()]
    events = sorted((e["event"], e["id"]) for e in recorded if e["event"].startswith("worker_"))
    assert events == [("worker_limited", "w2"), ("worker_needs_input", "far"),
                      ("worker_needs_input", "w1")]  # fmt: skip


def test_asks_and_spend_budgets_are_told_where_they_happen_not_again(ctx: Ctx, told: Told) -> None:
    p = ctx.paths
    new_ask(p.asks, p.answers, "w1", "ship it?", None, [], ctx.clock.now())
    rows = [{"id": "w1", "health": "waiting-ask"}, {"id": "w2", "health": "over budget"}]
    assert needstold.tell_needs(ctx, None, rows) == 0
    assert told == []


def test_the_beat_tells_a_held_start_and_a_far_worker_from_its_reading(
    ctx: Ctx, told: Told
) -> None:
    data, now = str(ctx.paths.data), ctx.clock.now()
    w = uw.Window({"key": "k", "runner": "claude", "who": "me", "until": now + 3600, "since": now})
    uw.hold(data, "w9", w, {"worker": "w9"}, now)
    value = {
        "detail": {"workers": {"far": {"needs_input": "approval: Allow once"}}},
        "signal": [{"id": "far", "health": "needs-input", "host": "gpu1"}],
    }
    assert needsinput.tell(ctx, None, Reading.of("sys-sessions", value)) == 2
    assert needsinput.tell(ctx, None, Reading.of("sys-sessions", value)) == 0
    kinds = sorted((kind, i) for kind, i, _ in told)
    assert kinds == [("held", "w9"), ("needs-input", "far")]
    (need,) = [n for n in worker_needs(uw.held_rows(data, ctx.clock)) if n.kind == "held"]
    assert need.since == int(now)  # since the start was held, as the queue shows it
    held = next(msg for kind, _, msg in told if kind == "held")
    assert "usage limit" in held and "looop kill w9" in held
    uw.unhold(data, "w9")  # started at the reset: it left the queue, nothing more is said
    assert needsinput.tell(ctx, None, Reading.of("sys-sessions", value)) == 0
    assert len(told) == 2
