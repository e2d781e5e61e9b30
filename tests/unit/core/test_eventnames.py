"""The event-name catalogue (home/eventnames.py) is the whole truth about the names src/ writes:
every name at an emit/record call is in it, every name in it is written somewhere, and the
few names chosen at run time come from it."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path
from typing import get_args

from looop.home import eventnames
from looop.loop import deciding
from tests import sourcetree

SRC = Path(eventnames.__file__).resolve().parents[1]

# Calls whose name is chosen at run time, each typed by the catalogue (see the annotations test).
DYNAMIC = {
    ("loop/deciding.py", "emit", "hit.event"),
    ("loop/deciding.py", "record", "hit.record"),
    ("loop/deciding.py", "emit", "code"),
}


@functools.cache  # four tests read the same scan
def _calls() -> tuple[tuple[str, str, ast.expr], ...]:
    """(file, emit|record, name argument) for every event call in src/."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for node in sourcetree.nodes(path):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            kind = node.func.attr
            receiver = ast.unparse(node.func.value)
            if kind not in ("emit", "record") or not (
                receiver == "ev" or receiver.endswith("events")
            ):
                continue
            pos = 1 if kind == "emit" else 0
            assert len(node.args) > pos, f"{rel}:{node.lineno} {kind} without a name"
            out.append((rel, kind, node.args[pos]))
    return tuple(out)


def _breaker_literals() -> tuple[set[str], set[str]]:
    """The event and record names the spend breakers are built with."""
    events, records = set(), set()
    for node in sourcetree.nodes(SRC / "decide/spend.py"):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Breaker":
            for i, field in ((2, events), (4, records)):
                arg = node.args[i]
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                field.add(arg.value)
    return events, records


def test_every_name_has_one_line_meaning() -> None:
    for meanings in (eventnames.PULSE, eventnames.RECORDS):
        for name, meaning in meanings.items():
            assert meaning.strip() and "\n" not in meaning, name
    assert set(get_args(eventnames.FailCode)) <= set(eventnames.PULSE)


def test_every_literal_name_at_a_call_is_in_the_catalogue() -> None:
    pulse, records = set(eventnames.PULSE), set(eventnames.RECORDS)
    calls = _calls()
    assert len(calls) > 50  # the scan found the calls at all
    for rel, kind, arg in calls:
        if isinstance(arg, ast.Constant):
            known = pulse if kind == "emit" else records
            assert arg.value in known, f"{rel}: {kind}({arg.value!r}) is not in home/eventnames.py"


def test_only_the_typed_calls_choose_a_name_at_run_time() -> None:
    dynamic = {
        (rel, kind, ast.unparse(arg))
        for rel, kind, arg in _calls()
        if not isinstance(arg, ast.Constant)
    }
    assert dynamic == DYNAMIC


def test_run_time_names_come_from_the_catalogue() -> None:
    # the names chosen at run time: a breaker's (built with literals) and a failure code
    events, records = _breaker_literals()
    assert events <= set(eventnames.PULSE) and records <= set(eventnames.RECORDS)
    code = inspect.signature(deciding.count_failure).parameters["code"].annotation
    assert code == "FailCode"


def test_every_catalogue_name_is_written_somewhere() -> None:
    emitted = {a.value for _, k, a in _calls() if k == "emit" and isinstance(a, ast.Constant)}
    recorded = {a.value for _, k, a in _calls() if k == "record" and isinstance(a, ast.Constant)}
    breaker_events, breaker_records = _breaker_literals()
    emitted |= breaker_events | set(get_args(eventnames.FailCode))
    recorded |= breaker_records
    assert set(eventnames.PULSE) - emitted == set()
    assert set(eventnames.RECORDS) - recorded == set()
