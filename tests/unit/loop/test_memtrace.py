"""The pulse's memory aids: a trace asked for in the environment, and the soak's deliberate
leak (the break that proves the soak's memory check can fail)."""

from __future__ import annotations

import pytest

from looop.loop.heartbeat import trace_from_env


def test_nothing_asked_is_no_trace() -> None:
    assert trace_from_env({}) is None
    assert trace_from_env({"LOOOP_SOAK_LEAK_KB": "0"}) is None


def test_the_soak_leak_keeps_its_kb_on_every_beat_without_tracing() -> None:
    trace = trace_from_env({"LOOOP_SOAK_LEAK_KB": "64"})
    assert trace is not None and trace.out is None and trace.leak_kb == 64
    trace.start()  # no tracemalloc: nothing to start
    for beat in range(1, 4):
        trace.beat(beat)
    assert sum(len(b) for b in trace._kept) == 3 * 64 * 1024
    assert trace.dumps == 0


@pytest.mark.parametrize(
    ("raw", "why"),
    [("lots", "whole number"), ("-1", "0 to 1048576"), ("2000000", "0 to 1048576")],
)
def test_a_bad_leak_is_one_line_naming_the_knob(raw: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^LOOOP_SOAK_LEAK_KB={raw}: .*{why}"):
        trace_from_env({"LOOOP_SOAK_LEAK_KB": raw})
