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


def _heap(figure: str) -> int:
    figures = gcpolicy.heap_figures()
    if not figures:
        pytest.skip("no glibc 2.33+ mallinfo2 here")
    return figures[figure]


def _big_read_lands_alone() -> bool:
    """After a big buffer was freed (CPython frees such early: a resized table of interned
    names, a file read whole), is a beat's buffer past the bar still mapped on its own? The
    buffer asked for is bigger than all the heap holds free, so no free chunk can serve it
    (a process that ran many tests has some): only the bar decides where it lands."""
    free = _heap("free")
    size = max(300_000, free + (64 << 10))
    big = bytearray(max(4 << 20, 4 * size))  # freed: glibc would raise its bar to this
    del big
    before = _heap("mapped")
    buf = bytearray(size)
    alone = _heap("mapped") - before >= len(buf)
    del buf
    return alone


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


def test_a_long_lived_process_gives_a_big_buffer_back_when_it_is_freed() -> None:
    # glibc would raise its bar to the freed 4 MB: later buffers (+1.4 kB a pulse beat) stay
    # in a heap that keeps its freed top (bench/soak_beats.py)
    if not gcpolicy.fix_heap_bars():
        pytest.skip("no glibc mallopt here")
    gcpolicy.long_lived()
    assert _big_read_lands_alone()
    assert _big_read_lands_alone()  # and again: the bar did not move


def test_the_pulse_gives_its_big_buffers_back(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    alone: list[bool] = []

    def fake_tick(_ctx: Ctx, **_kw: Any) -> TickOutcome:
        alone.extend(_big_read_lands_alone() for _ in range(3))
        return TickOutcome(status="skip")

    monkeypatch.setattr(pulse_mod, "tick", fake_tick)
    assert Pulse(ctx, max_beats=1).run() == 0
    assert alone == [True, True, True]
