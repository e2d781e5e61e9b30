"""start_worker's budget_usd / on_budget fields: a decision's per-worker spend ceiling is
read as the CLI's --budget is, and a bad one is refused in one line naming the field."""

from __future__ import annotations

import pytest

from looop.act.decision import DecisionError
from looop.act.moves.workers import StartWorker
from looop.act.parse import parse_decision
from looop.core.context import Ctx

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

    def said(extra: str) -> str:
        return parse_decision(_start(extra)).action.summary()

    assert (
        said(',"budget_usd":2.5,"on_budget":"stop"') == "start-worker w1 · budget $2.50, stop at it"
    )
    assert said(',"budget_usd":0.001') == "start-worker w1 · budget $0.001, pause at it"
    assert said("") == "start-worker w1"


@pytest.mark.parametrize(
    ("extra", "env", "pinned"),
    [
        (',"budget_usd":5', {}, True),
        # a custom command's budget counts what it reports, which comes home from any host
        (',"budget_usd":5,"command":"my-agent {{prompt_file}}"', {}, False),
        ("", {"LOOOP_REFUSE_UNMETERED": "true"}, True),
        ("", {"LOOOP_REFUSE_UNMETERED": "true", "LOOOP_MAX_DAILY_USD": "0"}, False),
        ("", {}, False),
    ],
)
def test_a_worker_to_be_metered_is_placed_on_this_machine(
    ctx: Ctx, extra: str, env: dict[str, str], pinned: bool
) -> None:
    """Its budget, or refuse_unmetered under a daily budget: the meter reads CLI records on
    this machine only, so with hosts registered such a start is placed here; a host named
    is refused in one line."""
    from looop.act.decision import Mover
    from looop.act.outcome import ExecError
    from looop.home.config import parse_config, resolve_knobs

    knobs = resolve_knobs(parse_config({}, "<test>"), env)
    a = parse_decision(_start(extra)).action
    assert isinstance(a, StartWorker)
    assert a._where(Mover(ctx, knobs, "pulse")) == (None, None)  # no hosts: nothing to place
    (ctx.paths.data / "hosts").mkdir()
    host, away = a._where(Mover(ctx, knobs, "pulse"))
    assert away is not None and host == ("local" if pinned else None)
    named = parse_decision(_start(extra + ',"host":"h1"')).action
    assert isinstance(named, StartWorker)
    if not pinned:
        assert named._where(Mover(ctx, knobs, "pulse"))[0] == "h1"
        return
    with pytest.raises(ExecError) as e:
        named._where(Mover(ctx, knobs, "pulse"))
    msg = str(e.value)
    assert "needs its spend metered" in msg and "--host local" in msg and "\n" not in msg


@pytest.mark.parametrize(("policy", "refused"), [("pause", True), ("stop", False)])
def test_a_pod_cannot_be_paused_at_its_budget_so_the_start_is_refused(
    ctx: Ctx, policy: str, refused: bool
) -> None:
    """A Kubernetes pod cannot be frozen: a budget that would pause it is refused at the start
    in one line; one that stops it goes there."""
    from looop.act.decision import Mover
    from looop.act.outcome import ExecError
    from looop.home.config import parse_config, resolve_knobs
    from looop.remote import hosts as reg

    reg.save(ctx.paths.data, reg.kube_host(ctx.paths.data, "k1", "k8s://ctx/ns", image="i:1"))
    knobs = resolve_knobs(parse_config({}, "<test>"), {})
    extra = f',"budget_usd":1,"on_budget":"{policy}","command":"a {{{{prompt_file}}}}","host":"k1"'
    a = parse_decision(_start(extra)).action
    assert isinstance(a, StartWorker)
    if not refused:
        assert a._where(Mover(ctx, knobs, "pulse"))[0] == "k1"
        return
    with pytest.raises(ExecError) as e:
        a._where(Mover(ctx, knobs, "pulse"))
    msg = str(e.value)
    assert "Kubernetes pod cannot be paused" in msg and "--on-budget stop" in msg
    assert "\n" not in msg
