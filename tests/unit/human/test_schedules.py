"""Schedules: level-triggered due-ness, once per period, missed periods once, cron across DST."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from looop.act.executor import execute
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.human import schedules
from looop.human.schedules import ScheduleError, build, probe
from tests.clocks import FixedClock

NY = ZoneInfo("America/New_York")


def _at(zone: Any, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def _signal(folder: Path, clock: FixedClock, name: str) -> Any:
    return probe(folder, clock)["signal"][name]


def _wakes(folder: Path, clock: FixedClock, name: str, until: float, step: float = 60) -> list[Any]:
    """Every distinct signal the probe shows while the clock walks to `until`: one per wake."""
    seen = [_signal(folder, clock, name)]
    while clock.t < until:
        clock.advance(step)
        sig = _signal(folder, clock, name)
        if sig != seen[-1]:
            seen.append(sig)
    return seen


def test_one_shot_reads_pending_then_due_and_stays_due(tmp_path: Path) -> None:
    clock = FixedClock()
    schedules.write(tmp_path, "ci", build(clock, in_s=90, note="look at CI"))
    assert _signal(tmp_path, clock, "ci") == "pending"
    detail = probe(tmp_path, clock)["detail"]["ci"]
    assert detail["kind"] == "one-shot" and detail["note"] == "look at CI"
    clock.advance(89)
    assert _signal(tmp_path, clock, "ci") == "pending"
    clock.advance(1)
    assert _signal(tmp_path, clock, "ci") == "due"
    # one wake: it stays "due" (no change, so no new decide) until someone drops it
    assert _wakes(tmp_path, clock, "ci", clock.t + 86400, step=3600) == ["due"]


def test_recurring_wakes_once_per_period_and_missed_periods_once(tmp_path: Path) -> None:
    clock = FixedClock()
    schedules.write(tmp_path, "poll", build(clock, every_s=600))
    start = clock.t
    # an hour of 30 s beats: exactly 6 changes of signal, one per period
    seen = _wakes(tmp_path, clock, "poll", start + 3600, step=30)
    assert len(seen) == 7 and len(set(map(json.dumps, seen))) == 7
    # the pulse was down for a day: the signal jumps once, not once per missed period
    before = _signal(tmp_path, clock, "poll")
    clock.advance(86400)
    after = _signal(tmp_path, clock, "poll")
    assert after != before
    clock.advance(1)
    assert _signal(tmp_path, clock, "poll") == after


def test_detail_holds_absolute_times_only(tmp_path: Path) -> None:
    """A countdown would change every beat and break the cached prompt prefix."""
    clock = FixedClock()
    schedules.write(tmp_path, "poll", build(clock, every_s=3600))
    schedules.write(tmp_path, "once", build(clock, in_s=7200))
    schedules.write(tmp_path, "cron", build(clock, cron="0 9 * * *"))
    first = probe(tmp_path, clock)
    clock.advance(60)
    assert probe(tmp_path, clock) == first


def test_cron_fires_at_its_time_in_its_own_zone(tmp_path: Path) -> None:
    clock = FixedClock(t=_at(UTC, 2026, 6, 1, 6, 0))  # the machine's zone is UTC
    schedules.write(tmp_path, "digest", build(clock, cron="0 9 * * *", tz="Europe/Berlin"))
    assert _signal(tmp_path, clock, "digest") == "pending"
    nine_berlin = _at(ZoneInfo("Europe/Berlin"), 2026, 6, 1, 9, 0)  # 07:00 UTC in summer
    clock.t = nine_berlin - 1
    assert _signal(tmp_path, clock, "digest") == "pending"
    clock.t = nine_berlin
    assert _signal(tmp_path, clock, "digest") == {"fired": "2026-06-01 09:00 +02:00"}
    detail = probe(tmp_path, clock)["detail"]["digest"]
    assert detail["next_due"] == "2026-06-02 09:00 +02:00" and detail["tz"] == "Europe/Berlin"


def test_cron_written_after_todays_time_waits_for_tomorrow(tmp_path: Path) -> None:
    clock = FixedClock(t=_at(UTC, 2026, 6, 1, 9, 30))
    schedules.write(tmp_path, "digest", build(clock, cron="0 9 * * *", tz="UTC"))
    assert _signal(tmp_path, clock, "digest") == "pending"
    seen = _wakes(tmp_path, clock, "digest", _at(UTC, 2026, 6, 2, 9, 30))
    assert seen == ["pending", {"fired": "2026-06-02 09:00 +00:00"}]


def test_cron_missed_days_fire_once(tmp_path: Path) -> None:
    clock = FixedClock(t=_at(UTC, 2026, 6, 1, 8, 0))
    schedules.write(tmp_path, "digest", build(clock, cron="0 9 * * *", tz="UTC"))
    clock.t = _at(UTC, 2026, 6, 5, 12, 0)  # the pulse was down for four mornings
    assert _signal(tmp_path, clock, "digest") == {"fired": "2026-06-05 09:00 +00:00"}
    clock.advance(3600 * 22)  # the next morning is one more wake
    assert _signal(tmp_path, clock, "digest") == {"fired": "2026-06-06 09:00 +00:00"}


@pytest.mark.parametrize(
    ("cron", "start", "end", "expected"),
    [
        # spring forward (2026-03-08 02:00 -> 03:00): 02:30 does not exist that day; it runs once
        # right after the jump, and every other day at 02:30 — one wake per day, none lost
        ("30 2 * * *", (2026, 3, 7, 0, 0), (2026, 3, 10, 0, 0), 3),
        # fall back (2026-11-01 02:00 -> 01:00): 01:30 happens twice, the job fires once
        ("30 1 * * *", (2026, 10, 31, 0, 0), (2026, 11, 3, 0, 0), 3),
        # a wildcard-hour job runs in both copies of the repeated hour, like Debian cron
        ("0,30 * * * *", (2026, 11, 1, 0, 15), (2026, 11, 1, 3, 15), 8),
    ],
)
def test_cron_across_a_dst_change_in_a_named_zone(
    tmp_path: Path,
    cron: str,
    start: tuple[int, ...],
    end: tuple[int, ...],
    expected: int,
) -> None:
    clock = FixedClock(t=_at(NY, *start), tz=UTC)
    schedules.write(tmp_path, "job", build(clock, cron=cron, tz="America/New_York"))
    # a beat every 5 min: any step under the repeated hour would catch a second fire in it
    seen = _wakes(tmp_path, clock, "job", _at(NY, *end), step=300)
    fires = [s["fired"] for s in seen if s != "pending"]
    assert len(fires) == expected, fires
    moments = [datetime.strptime(f, "%Y-%m-%d %H:%M %z").timestamp() for f in fires]
    assert moments == sorted(set(moments)), "a signal that steps back would wake the loop twice"


def test_spring_forward_fire_lands_after_the_jump(tmp_path: Path) -> None:
    clock = FixedClock(t=_at(NY, 2026, 3, 8, 0, 0))
    schedules.write(tmp_path, "job", build(clock, cron="30 2 * * *", tz="America/New_York"))
    seen = _wakes(tmp_path, clock, "job", _at(NY, 2026, 3, 8, 12, 0))
    assert seen == ["pending", {"fired": "2026-03-08 03:00 -04:00"}]


def test_local_zone_follows_the_clock(tmp_path: Path) -> None:
    clock = FixedClock(t=_at(NY, 2026, 6, 1, 8, 0), tz=NY)
    rec = build(clock, cron="0 9 * * *")
    assert rec["tz"] == "America/New_York"
    schedules.write(tmp_path, "local", rec)
    clock.t = _at(NY, 2026, 6, 1, 9, 0)
    assert _signal(tmp_path, clock, "local") == {"fired": "2026-06-01 09:00 -04:00"}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "exactly one"),
        ({"in_s": 5, "every_s": 60}, "exactly one"),
        ({"in_s": 0}, "at least 1"),
        ({"every_s": 59}, ">= 60"),
        ({"cron": "61 * * * *"}, "Bad minute"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "day"),
        ({"cron": "   "}, "empty"),
        ({"cron": "0 9 * * *", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 9 * * *", "tz": "../../etc/passwd"}, "unknown time zone"),
        ({"in_s": 60, "tz": "UTC"}, "tz applies only to cron"),
    ],
)
def test_bad_schedules_are_one_line_errors(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ScheduleError) as e:
        build(FixedClock(), **kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"every_s": 0, "anchor": 1}',
        b'{"at": 5, "every_s": 60}',
        b'{"cron": "99 * * * *"}',
        b'{"cron": "0 9 * * *", "tz": "Nowhere/Land"}',
        b'{"at": "tomorrow"}',
        b"\xff\xfe",
    ],
)
def test_broken_schedule_file_reads_invalid_and_stays_stable(tmp_path: Path, body: bytes) -> None:
    clock = FixedClock()
    (tmp_path / "broken.json").write_bytes(body)
    schedules.write(tmp_path, "fine", build(clock, in_s=60))
    assert _signal(tmp_path, clock, "broken") == "invalid"
    assert probe(tmp_path, clock)["detail"]["broken"]["error"]
    assert _wakes(tmp_path, clock, "broken", clock.t + 7200) == ["invalid"]
    assert _signal(tmp_path, clock, "fine") == "due"  # one broken file hides nothing else


def test_hand_written_recurring_without_anchor_is_due_at_once(tmp_path: Path) -> None:
    clock = FixedClock()
    (tmp_path / "hand.json").write_text('{"every_s": 3600}')
    first = _signal(tmp_path, clock, "hand")
    assert first["period"] > 0
    clock.advance(3600)
    assert _signal(tmp_path, clock, "hand")["period"] == first["period"] + 1


def test_next_due_is_the_soonest_future_change(tmp_path: Path) -> None:
    clock = FixedClock()
    assert schedules.next_due(tmp_path, clock) is None
    schedules.write(tmp_path, "later", build(clock, in_s=3600))
    schedules.write(tmp_path, "soon", build(clock, in_s=42))
    schedules.write(tmp_path, "poll", build(clock, every_s=600))
    assert schedules.next_due(tmp_path, clock) == (clock.t + 42, "soon")
    clock.advance(42)  # "soon" is due now and never changes again: poll is next
    assert schedules.next_due(tmp_path, clock) == (clock.t - 42 + 600, "poll")


def _run(ctx: Ctx, obj: dict[str, Any]) -> str:
    return execute(ctx, ctx.knobs(), decision_from_obj(obj), actor="cli").journal


def test_actions_write_and_drop_through_the_executor(ctx: Ctx) -> None:
    line = _run(
        ctx,
        {"action": "write_schedule", "name": "digest", "cron": "0 9 * * MON", "tz": "UTC"},
    )
    assert "write-schedule digest" in line and "0 9 * * MON" in line
    rec = json.loads((ctx.paths.schedules / "digest.json").read_text())
    assert rec["cron"] == "0 9 * * MON" and rec["tz"] == "UTC"
    assert "digest" in ctx.paths.journal.read_text()
    _run(ctx, {"action": "drop_schedule", "name": "digest"})
    assert not (ctx.paths.schedules / "digest.json").exists()
    _run(ctx, {"action": "drop_schedule", "name": "digest"})  # idempotent, as the reference


def test_refused_schedule_writes_nothing_and_journals_nothing(ctx: Ctx) -> None:
    with pytest.raises(ExecError) as e:
        _run(ctx, {"action": "write_schedule", "name": "x", "cron": "0 9 * * *", "tz": "Mars"})
    assert "write_schedule 'x'" in str(e.value) and "unknown time zone" in str(e.value)
    assert not (ctx.paths.schedules / "x.json").exists()
    assert not ctx.paths.journal.exists()


DAY = 86400


def _beat(folder: Path, clock: FixedClock, name: str) -> Any:
    """The signal as a beat's probe reads it: with the marks it keeps."""
    return probe(folder, clock, folder.parent / ".schedule-marks.json")["signal"][name]


def _beat_wakes(folder: Path, clock: FixedClock, name: str, secs: float, step: float) -> int:
    """How many times the signal changes (one wake each) over `secs` of monotonic time."""
    wakes, last = 0, _beat(folder, clock, name)
    for _ in range(int(secs // step)):
        clock.advance(step)
        sig = _beat(folder, clock, name)
        wakes, last = wakes + (sig != last), sig
    return wakes


def test_cron_slot_fired_does_not_fire_again_after_the_clock_steps_back(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    clock = FixedClock(t=_at(UTC, 2026, 6, 1, 8, 0))
    schedules.write(folder, "digest", build(clock, cron="0 9 * * *", tz="UTC"))
    clock.t = _at(UTC, 2026, 6, 1, 9, 1)
    fired = _beat(folder, clock, "digest")
    assert fired == {"fired": "2026-06-01 09:00 +00:00"}
    clock.t -= DAY  # back over yesterday's 09:00 and on across today's again
    assert _beat_wakes(folder, clock, "digest", DAY - 120, 600) == 0
    assert _beat(folder, clock, "digest") == fired
    # the pulse sleeps towards the next slot, not the one already fired
    due = schedules.next_due(folder, clock, folder.parent / ".schedule-marks.json")
    assert due is not None and due[0] == _at(UTC, 2026, 6, 2, 9, 0)
    clock.t = _at(UTC, 2026, 6, 2, 9, 0)
    assert _beat(folder, clock, "digest") == {"fired": "2026-06-02 09:00 +00:00"}


def test_every_runs_on_the_monotonic_clock_across_a_step_back(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    clock = FixedClock()
    schedules.write(folder, "poll", build(clock, every_s=600))
    clock.advance(601)
    first = _beat(folder, clock, "poll")
    assert first == {"period": 1}
    clock.advance(300)
    clock.t -= DAY  # halfway through a period the wall clock steps back a day
    assert _beat(folder, clock, "poll") == first  # no second firing of a period
    clock.advance(297)  # 1198 s after the anchor on the monotonic clock
    assert _beat(folder, clock, "poll") == first
    clock.advance(3)  # past 1200 s: period 2 fires on time
    assert _beat(folder, clock, "poll") == {"period": 2}
    # and on at its cadence: one wake per 600 s, not a day of silence
    assert _beat_wakes(folder, clock, "poll", 3600, 60) == 6
    due = schedules.next_due(folder, clock, folder.parent / ".schedule-marks.json")
    assert due is not None and 0 < due[0] - clock.now() <= 600


def test_every_period_never_goes_back_without_a_monotonic_reading(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    clock = FixedClock()
    schedules.write(folder, "poll", build(clock, every_s=600))
    clock.advance(1201)
    assert _beat(folder, clock, "poll") == {"period": 2}
    rebooted = FixedClock(t=clock.t - DAY, mono=-1e9)  # its monotonic clock starts over
    assert _beat(folder, rebooted, "poll") == {"period": 2}
    rebooted.advance(599)
    assert _beat(folder, rebooted, "poll") == {"period": 2}
    rebooted.advance(2)  # at most one period late, not a day
    assert _beat(folder, rebooted, "poll") == {"period": 3}


def test_one_shot_due_stays_due_after_the_clock_steps_back(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    clock = FixedClock()
    schedules.write(folder, "ci", build(clock, in_s=90))
    clock.advance(90)
    assert _beat(folder, clock, "ci") == "due"
    clock.t -= DAY
    assert _beat(folder, clock, "ci") == "due"
    assert _beat_wakes(folder, clock, "ci", DAY, 3600) == 0


def test_forward_step_fires_each_due_schedule_once(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    clock = FixedClock(t=_at(UTC, 2026, 6, 1, 8, 0))
    schedules.write(folder, "digest", build(clock, cron="0 9 * * *", tz="UTC"))
    schedules.write(folder, "poll", build(clock, every_s=600))
    schedules.write(folder, "ci", build(clock, in_s=3600))
    before = probe(folder, clock, folder.parent / ".schedule-marks.json")["signal"]
    clock.t += 3 * DAY  # the wall clock jumps three days ahead
    after = probe(folder, clock, folder.parent / ".schedule-marks.json")["signal"]
    assert all(after[n] != before[n] for n in ("digest", "poll", "ci"))
    clock.advance(60)  # a minute later: nothing fires a second time for the missed days
    assert probe(folder, clock, folder.parent / ".schedule-marks.json")["signal"] == after
