"""start_worker's budget_usd / on_budget fields: a decision's per-worker spend ceiling is
read as the CLI's --budget is, and a bad one is refused in one line naming the field."""

from __future__ import annotations

import pytest

from looop.act.decision import DecisionError, StartWorker
from looop.act.parse import parse_decision

pytestmark = pytest.mark.unit


def _start(extra: str) -> bytes:
    return ('{"action":"start_worker","id":"w1","prompt":"go"' + extra + "}").encode()


def test_budget_and_policy_are_read() -> None:
    a = parse_decision(_start(',"budget_usd":2.5,"on_budget":"stop"')).action
    assert isinstance(a, StartWorker)
    assert (a.budget_usd, a.on_budget) == (2.5, "stop")
    b = parse_decision(_start(',"budget_usd":3')).action
    assert isinstance(b, StartWorker)
    assert (b.budget_usd, b.on_budget) == (3.0, "pause")  # pause unless told
    c = parse_decision(_start("")).action
    assert isinstance(c, StartWorker) and c.budget_usd is None


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "0",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "1e308",
        "10000.5",
        "123456789012345678",
        '"5"',
        "true",
        "[5]",
    ],
)
def test_a_budget_that_is_no_amount_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(DecisionError) as e:
        parse_decision(_start(f',"budget_usd":{value}'))
    msg = str(e.value)
    assert "budget_usd" in msg and "\n" not in msg


@pytest.mark.parametrize("value", ['"explode"', '"PAUSE"', "1", '""'])
def test_an_unknown_policy_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(DecisionError) as e:
        parse_decision(_start(f',"budget_usd":1,"on_budget":{value}'))
    assert "on_budget" in str(e.value)


def test_a_verb_building_the_action_gets_the_same_guard() -> None:
    with pytest.raises(DecisionError, match="budget_usd"):
        StartWorker(id="w1", prompt="go", budget_usd=float("nan"))
