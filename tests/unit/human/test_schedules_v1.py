"""v1.0's schedule cases replayed: a schedule far in the future saturates ("the end of time",
never due in practice) instead of being refused or overflowing, and a hand-written one past
any printable date still reads as pending."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.act.decision import DecisionError
from looop.act.executor import execute
from looop.act.parse import decision_from_obj, parse_decision
from looop.core.context import Ctx
from looop.human import schedules
from looop.human.schedules import build, probe
from tests.clocks import FixedClock

U64_MAX = 18446744073709551615
FAR_S = 10 * 366 * 86400  # ten years, where a later schedule saturates


def _run(ctx: Ctx, obj: dict[str, Any]) -> str:
    return execute(ctx, ctx.knobs(), decision_from_obj(obj), actor="cli").journal


def test_a_decided_one_shot_past_ten_years_saturates_and_stays_pending(ctx: Ctx) -> None:
    now = ctx.clock.now()
    line = _run(ctx, {"action": "write_schedule", "name": "far", "in_s": 10**17})
    assert "write-schedule far" in line
    rec = json.loads((ctx.paths.schedules / "far.json").read_text())
    assert rec["at"] == int(now) + FAR_S
    assert probe(ctx.paths.schedules, ctx.clock)["signal"]["far"] == "pending"


def test_a_decided_period_past_ten_years_saturates(ctx: Ctx) -> None:
    _run(ctx, {"action": "write_schedule", "name": "rare", "every_s": 20 * 366 * 86400})
    rec = json.loads((ctx.paths.schedules / "rare.json").read_text())
    assert rec["every_s"] == FAR_S
    two_years = 2 * 366 * 86400  # within ten years: kept as given (v1.0 took any period)
    _run(ctx, {"action": "write_schedule", "name": "biennial", "every_s": two_years})
    assert json.loads((ctx.paths.schedules / "biennial.json").read_text())["every_s"] == two_years


def test_a_huge_in_s_saturates_instead_of_overflowing(tmp_path: Any) -> None:
    """v1.0's write_with_a_huge_in_s_saturates_instead_of_overflowing."""
    clock = FixedClock()
    schedules.write(tmp_path, "far", build(clock, in_s=U64_MAX))
    assert probe(tmp_path, clock)["signal"]["far"] == "pending"


def test_a_hand_written_end_of_time_reads_pending(tmp_path: Any) -> None:
    clock = FixedClock()
    (tmp_path / "far.json").write_text(json.dumps({"at": U64_MAX}))
    (tmp_path / "rare.json").write_text(json.dumps({"every_s": U64_MAX, "anchor": 0}))
    got = probe(tmp_path, clock)
    assert got["signal"]["far"] == "pending"
    assert got["detail"]["far"]["due_at"].startswith("9999-12-")
    assert got["signal"]["rare"] is not None
    assert schedules.first_fires({"at": U64_MAX}, clock) == [float(U64_MAX)]
    assert schedules.fire_stamp({"at": U64_MAX}, clock, float(U64_MAX)).startswith("9999-12-")


@pytest.mark.parametrize("field", ["in_s", "every_s"])
@pytest.mark.parametrize("digits", [19, 20, 4000, 100_000])
def test_a_decision_with_a_huge_schedule_saturates_rather_than_refused(
    ctx: Ctx, field: str, digits: int
) -> None:
    """v1.0's u64::MAX and beyond, as the decider writes it: held at the end of time."""
    raw = f'{{"action": "write_schedule", "name": "far", "{field}": {"9" * digits}}}'
    execute(ctx, ctx.knobs(), parse_decision(raw.encode()), actor="cli")
    rec = json.loads((ctx.paths.schedules / "far.json").read_text())
    assert (rec["at"] - int(ctx.clock.now()) if field == "in_s" else rec["every_s"]) == FAR_S


def test_a_huge_integer_elsewhere_or_negative_is_still_refused_naming_its_field() -> None:
    raw = b'{"action": "write_schedule", "name": "far", "in_s": 5, "next_interval_s": 1' + (
        b"0" * 30 + b"}"
    )
    with pytest.raises(DecisionError, match=r"field 'next_interval_s' holds an integer of 31"):
        parse_decision(raw)
    neg = b'{"action": "write_schedule", "name": "far", "in_s": -' + b"9" * 40 + b"}"
    with pytest.raises(DecisionError, match=r"'in_s' must be an integer from 1"):
        parse_decision(neg)


def test_a_huge_integer_under_a_key_with_a_newline_is_refused_on_one_line() -> None:
    """The key is the decider's text: its error still fits the journal's one line."""
    raw = b'{"action": "noop", "cmd": {"a\\nb": 1' + b"0" * 30 + b"}}"
    with pytest.raises(DecisionError) as got:
        parse_decision(raw)
    assert "\n" not in str(got.value) and "a\\x0ab" in str(got.value)
