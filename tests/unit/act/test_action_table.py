"""Exhaustive by construction: an action is one whole declaration (tag, kind, how the prompt
teaches it, parse, summary, perform), every declared action is in the one table, the table
drives the parser and the prompt's reference, and the executor journals a move only after its
perform returned."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest

from looop import seed
from looop.act import actiontable, moves
from looop.act.actiontable import ACTION_TAGS, all_actions, check, declared, taught
from looop.act.decision import Action, Decision, DecisionError, Mover
from looop.act.executor import execute
from looop.act.moves.files import WriteGoal
from looop.act.outcome import ExecError
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.decide.prompt import instructions
from looop.home import store

ACTIONS = all_actions()


def test_an_action_without_a_perform_is_refused_where_it_is_declared() -> None:
    with pytest.raises(TypeError, match=r"action Pause does not declare perform"):

        @dataclass(frozen=True)
        class Pause(Action):  # everything but what it does
            tag = "pause"
            kind = "pause"
            teach = 'pause{id} - pause a worker.\n  {"action":"pause","id":"w1"}'

            id: str

            @classmethod
            def parse(cls, obj: dict[str, Any]) -> Self:
                return cls(id=obj["id"])

            def summary(self) -> str:
                return f"paused {self.id} for the night"


MISSING_PERFORM = """
from dataclasses import dataclass
from typing import Any, Self

from looop.act.decision import Action, Decision


@dataclass(frozen=True)
class Pause(Action):
    tag = "pause"
    kind = "pause"
    teach = "pause{id}"
    id: str

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        return cls(id=obj["id"])

    def summary(self) -> str:
        return "paused"


PAUSED = Decision(Pause("w1"))
"""


@pytest.mark.timeout(60)
def test_an_action_without_a_perform_is_a_type_error(tmp_path: Path) -> None:
    from mypy import api  # in this process: the unit tier starts none

    source = tmp_path / "pause.py"
    source.write_text(MISSING_PERFORM)
    args = ["--strict", "--follow-imports=silent", "--cache-dir", os.devnull, str(source)]
    out, _, status = api.run(args)
    assert status == 1, out
    assert 'Cannot instantiate abstract class "Pause" with abstract attribute "perform"' in out


def test_an_action_missing_its_tag_kind_or_teaching_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"does not declare tag, kind, teach, parse, summary"):

        class Bare(Action):
            def perform(self, by: Mover) -> str | None:
                return None


def test_a_declared_action_left_out_of_the_table_is_refused() -> None:
    @dataclass(frozen=True)
    class Stray(Action):
        tag = "stray"
        kind = "stray"
        teach = 'stray{} - nothing.\n  {"action":"stray"}'

        @classmethod
        def parse(cls, obj: dict[str, Any]) -> Self:
            return cls()

        def summary(self) -> str:
            return "stray"

        def perform(self, by: Mover) -> str | None:
            return None

    with pytest.raises(TypeError, match=r"Stray is declared but not in act/actiontable.py"):
        check(ACTIONS, declared(__name__.rpartition(".")[0]))
    with pytest.raises(TypeError, match="share a tag or a kind"):
        check((*ACTIONS, Stray, Stray), set())
    assert "stray" not in ACTION_TAGS
    with pytest.raises(DecisionError, match='unknown action "stray"'):
        parse_decision(b'{"action": "stray"}')


def test_a_row_naming_no_such_declaration_is_refused_when_its_tag_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table is the one list: a row whose module or class does not declare its tag is a
    TypeError naming the row, at its first parse and whenever the table is read whole."""
    monkeypatch.setitem(actiontable._WHERE, "noop", "notes.SendNotification")
    with pytest.raises(TypeError, match=r"row 'noop' names notes.SendNotification"):
        parse_decision(b'{"action": "noop"}')
    with pytest.raises(TypeError, match=r"row 'noop'"):
        taught()
    monkeypatch.setitem(actiontable._WHERE, "noop", "notes.Gone")
    with pytest.raises(TypeError, match=r"row 'noop' names notes.Gone"):
        actiontable.action_for("noop")


def test_each_tag_loads_the_module_its_row_names() -> None:
    for tag, where in actiontable.ROWS:
        cls = actiontable.action_for(tag)
        assert (cls.__module__, cls.__name__) == (
            f"{moves.__name__}.{where.split('.')[0]}",
            where.split(".")[1],
        )
        assert cls.tag == tag


def test_every_action_in_act_moves_is_in_the_table_once() -> None:
    for info in pkgutil.iter_modules(moves.__path__):
        importlib.import_module(f"{moves.__name__}.{info.name}")
    found = declared()
    assert found == set(ACTIONS)
    assert check(ACTIONS, found) == {a.tag: a for a in ACTIONS}
    assert len({a.kind for a in ACTIONS}) == len(ACTIONS) == len(ACTION_TAGS)


def test_the_prompt_teaches_every_tag_of_the_table_in_its_order() -> None:
    text = instructions(900, taught())
    heads = re.findall(r"^([a-z_]+)\{", text, re.M)
    assert heads == list(ACTION_TAGS)
    for a in ACTIONS:  # each teaching ends with an example the parser takes as that action
        example = a.teach.splitlines()[-1].strip()
        assert type(parse_decision(example.encode()).action) is a, a.tag


def test_the_manual_lists_every_action_of_the_table() -> None:
    manual = (Path(seed.__file__).parent / "manual.md").read_text("utf-8")
    listed = re.findall(r"^  ([a-z_]+)\{", manual, re.M)
    assert sorted(t for t in listed if t in ACTION_TAGS) == sorted(ACTION_TAGS)


def test_every_tag_parses_to_its_class_through_the_table() -> None:
    for a in ACTIONS:
        example = json.loads(a.teach.splitlines()[-1])
        got = parse_decision(json.dumps(example).encode()).action
        assert got.tag == example["action"] and got.summary().strip()


# ---- the executor journals only after a perform that returned ----------------------------


@dataclass(frozen=True)
class Probe(Action):
    """A test action: what the journal held while it was performed, or a failure."""

    tag = "probe"
    kind = "probe"
    teach = 'probe{id} - a test.\n  {"action":"probe","id":"g1"}'

    id: str
    fail: BaseException | None = None
    seen: list[str | None] | None = None

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        return cls(id=obj["id"])

    def summary(self) -> str:
        return f"probe {self.id}"

    def goal(self) -> str | None:
        return self.id

    def perform(self, by: Mover) -> str | None:
        if self.seen is not None:
            self.seen.append(store.read_text(by.ctx.paths.journal))
        if self.fail is not None:
            raise self.fail
        return None


def test_the_journal_line_is_written_after_perform_returned(ctx: Ctx) -> None:
    seen: list[str | None] = []
    done = execute(ctx, ctx.knobs(), Decision(Probe("g1", seen=seen)), actor="cli")
    assert seen == [None]  # while it ran: no journal yet
    assert "probe g1" in (store.read_text(ctx.paths.journal) or "")
    assert done.kind == "probe" and done.goal == "g1"
    assert "g1" in json.loads(ctx.paths.goal_activity.read_text())


@pytest.mark.parametrize(
    "fail",
    [ExecError("probe: refused"), OSError(28, "No space left on device"), RuntimeError("bug")],
)
def test_a_perform_that_raised_journals_and_stamps_nothing(ctx: Ctx, fail: BaseException) -> None:
    execute(ctx, ctx.knobs(), Decision(WriteGoal("g0", "goal: a first line")), actor="cli")
    before = store.read_text(ctx.paths.journal)
    stamps = ctx.paths.goal_activity.read_text()
    with pytest.raises((ExecError, RuntimeError)):
        execute(ctx, ctx.knobs(), Decision(Probe("g1", fail=fail)), actor="cli")
    assert store.read_text(ctx.paths.journal) == before
    assert ctx.paths.goal_activity.read_text() == stamps
    events = store.read_text(ctx.paths.events) or ""
    assert '"goal"' in events and '"probe"' not in events  # no `steered` record for it
