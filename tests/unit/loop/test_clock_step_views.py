"""What status and `schedule list` say after the wall clock steps (an NTP fix, a resumed
laptop): the pulse sleeps and fires schedules on the monotonic clock, so its faces must too
(issue 51: they said "next in 59m" while the schedule fired on time)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.stamps import utc_stamp
from looop.loop.pulse import Pulse
from looop.views import beatlog
from tests.clocks import FixedClock


def _records(ctx: Ctx) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in ctx.paths.events.read_text().splitlines()]


@pytest.mark.parametrize("step", [-3600, 3600, -86400])
def test_the_next_beat_is_where_the_pulse_wakes_after_a_wall_clock_step(
    ctx: Ctx, clock: FixedClock, step: int
) -> None:
    Pulse(ctx)._say_sleep(5, "idle")
    clock.t += step  # the wall clock steps; the monotonic one runs on
    nb = beatlog.next_beat(_records(ctx), clock, True)
    assert nb is not None and nb["ts"] is not None
    assert 0 <= clock.now() + 5 - nb["ts"] <= 2  # in 5 s, not an hour (or a day) off
    assert nb["reason"] == "idle"


def test_a_mark_from_another_boot_is_not_trusted(clock: FixedClock) -> None:
    """A monotonic mark further ahead than the sleep itself is not of this boot: the wall
    clock's `until` stands (as before the mark existed)."""
    until = clock.now() + 30
    rec: dict[str, Any] = {
        "event": "pulse_sleep",
        "secs": 30,
        "until": utc_stamp(until),
        "until_mono": clock.monotonic() + 10_000,
    }
    nb = beatlog.next_beat([rec], clock, True)
    assert nb is not None and nb["ts"] == int(until)
    del rec["until_mono"]  # a record from before the mark: the wall clock's `until`
    nb = beatlog.next_beat([rec], clock, True)
    assert nb is not None and nb["ts"] == int(until)
