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


def test_the_journal_line_keeps_the_budget_and_its_policy() -> None:
    from looop.act.decision import summary_of

    def said(extra: str) -> str:
        return summary_of(parse_decision(_start(extra)).action)

    assert (
        said(',"budget_usd":2.5,"on_budget":"stop"') == "start-worker w1 · budget $2.50, stop at it"
    )
    assert said(',"budget_usd":0.001') == "start-worker w1 · budget $0.001, pause at it"
    assert said("") == "start-worker w1"


@pytest.mark.parametrize(
    ("extra", "env", "why"),
    [
        (',"budget_usd":5', {}, "its budget"),
        ("", {"LOOOP_REFUSE_UNMETERED": "true"}, "refuse_unmetered (a daily budget is on)"),
        ("", {"LOOOP_REFUSE_UNMETERED": "true", "LOOOP_MAX_DAILY_USD": "0"}, None),
        ("", {}, None),
    ],
)
def test_what_keeps_a_worker_where_the_meter_reads(
    extra: str, env: dict[str, str], why: str | None
) -> None:
    """A worker that must be metered (its budget; refuse_unmetered under a daily budget) is
    placed on this machine: the meter does not read a host's files."""
    from looop.act.effects import _why_metered
    from looop.core.config import parse_config, resolve_knobs

    a = parse_decision(_start(extra)).action
    assert isinstance(a, StartWorker)
    knobs = resolve_knobs(parse_config({}, "<test>"), env)
    assert _why_metered(knobs, a) == why
