"""Long-lived processes: no garbage that piles up beat after beat (issue 30, memory)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from looop.core import gcpolicy, procs
from looop.core.context import Ctx
from looop.loop import pulse as pulse_mod
from looop.loop.beat import TickOutcome
from looop.loop.pulse import Pulse
from looop.verbs.console import GC_THRESHOLD

pytestmark = pytest.mark.unit


@pytest.fixture
def light_verb_gc() -> Iterator[None]:
    """The thresholds `looop` starts every process with (verbs/console.py), restored after."""
    saved = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _tracked() -> int:
    return len(gc.get_objects())


def test_prctl_calls_leave_no_garbage_behind(light_verb_gc: None) -> None:
    # a Containment window asks prctl twice; a pulse opens one per beat and per run_shell
    procs._prctl(procs.PR_GET_CHILD_SUBREAPER, 0)
    before = _tracked()
    for _ in range(300):
        procs._prctl(procs.PR_GET_CHILD_SUBREAPER, 0)
    # a ctypes library built per call left ~10 tracked objects each: 3000 here
    assert _tracked() - before < 100


def test_a_long_lived_process_collects_cycles_as_python_does(light_verb_gc: None) -> None:
    gcpolicy.long_lived()
    assert gc.get_threshold() == gcpolicy.DEFAULT_THRESHOLD
    gc.collect()
    before = _tracked()
    for _ in range(5000):  # a beat's worth of cycles, many times over
        a: list[object] = []
        a.append(a)
    del a
    # young collections every 700 net allocations: the cycles never pile up
    assert _tracked() - before < 1000


def test_under_the_light_verb_threshold_the_same_cycles_pile_up(light_verb_gc: None) -> None:
    # the control: what the pulse and the web did before they called long_lived()
    gc.collect()
    before = _tracked()
    for _ in range(5000):
        a: list[object] = []
        a.append(a)
    del a
    assert _tracked() - before >= 4000
    gc.collect()


def test_the_pulse_collects_as_a_long_lived_process(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, light_verb_gc: None
) -> None:
    seen: list[tuple[int, int, int]] = []

    def fake_tick(_ctx: Ctx, **_kw: Any) -> TickOutcome:
        seen.append(gc.get_threshold())
        return TickOutcome(status="skip")

    monkeypatch.setattr(pulse_mod, "tick", fake_tick)
    assert Pulse(ctx, max_beats=1).run() == 0
    assert seen == [gcpolicy.DEFAULT_THRESHOLD]
