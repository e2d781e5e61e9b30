"""Which sensors the beat runs inside the shell sandbox (sense/sensors.py `_confine`): every one
but a human's while shell_policy's sandbox is on, none when it is off, and — when the config
cannot be read — a sensor no human vouched for does not run at all. The real srt runs them in
tests/sandbox/test_sandboxed_decider_moves.py; here srt is missing, so a confined sensor fails
with srt's one line and never runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core import provenance
from looop.core.context import Ctx
from looop.home.sandboxpolicy import OFF, ON
from looop.sense.sensors import run_user_sensors

pytestmark = [pytest.mark.timeout(20), pytest.mark.process]  # real sensors run


def add(ctx: Ctx, name: str, by: str | None) -> Path:
    """A sensor that leaves a mark when it runs; `by` records its writer (None: by hand)."""
    mark = ctx.paths.data.parent / f"ran-{name}"
    script = ctx.paths.sensor(name)
    script.parent.mkdir(parents=True, exist_ok=True)
    body = f'#!/bin/sh\ntouch {mark}\necho \'{{"signal": {{"ok": 1}}}}\'\n'
    script.write_text(body)
    script.chmod(0o755)
    if by is not None:
        provenance.write(ctx.paths, provenance.SENSOR, name, body.encode(), by)
    return mark


def snapshot(ctx: Ctx, name: str) -> dict[str, object]:
    got = json.loads((ctx.paths.snapshots / f"sensor-{name}.json").read_text())
    assert isinstance(got, dict)
    return got


def no_srt(ctx: Ctx) -> Ctx:
    return replace(ctx, env={**ctx.env, "LOOOP_SRT": str(ctx.paths.data / "no-srt")})


def test_sandbox_off_runs_every_sensor_as_before(ctx: Ctx) -> None:
    marks = [add(ctx, "mine", provenance.HUMAN), add(ctx, "theirs", provenance.DECISION)]
    readings = run_user_sensors(no_srt(ctx), ctx.knobs(), OFF)
    assert all(r.ok for r in readings) and all(m.exists() for m in marks)


def test_sandbox_on_confines_all_but_a_humans(ctx: Ctx) -> None:
    mine = add(ctx, "mine", provenance.HUMAN)
    theirs = add(ctx, "theirs", provenance.DECISION)
    by_hand = add(ctx, "byhand", None)
    readings = {r.name: r for r in run_user_sensors(no_srt(ctx), ctx.knobs(), ON)}
    assert readings["sensor-mine"].ok and mine.exists()
    for name, mark in (("theirs", theirs), ("byhand", by_hand)):
        r = readings[f"sensor-{name}"]
        assert not r.ok and not mark.exists()
        assert r.error is not None and "cannot run sandboxed: missing srt" in r.error
        assert snapshot(ctx, name)["signal"] == {"error": True, "exit_code": 127}


def test_a_humans_sensor_edited_since_is_confined(ctx: Ctx) -> None:
    mark = add(ctx, "mine", provenance.HUMAN)
    script = ctx.paths.sensor("mine")
    script.write_text(script.read_text() + "# one more line\n")
    [r] = run_user_sensors(no_srt(ctx), ctx.knobs(), ON)
    assert not r.ok and not mark.exists()


def test_an_unreadable_config_runs_only_a_humans_sensor(ctx: Ctx) -> None:
    mine = add(ctx, "mine", provenance.HUMAN)
    theirs = add(ctx, "theirs", provenance.DECISION)
    readings = {r.name: r for r in run_user_sensors(ctx, ctx.knobs(), None)}
    assert readings["sensor-mine"].ok and mine.exists()
    r = readings["sensor-theirs"]
    assert not r.ok and not theirs.exists()
    assert r.error is not None and "the config cannot be read" in r.error


def test_a_decisions_unreadable_sensor_does_not_run_once_the_sandbox_is_off(ctx: Ctx) -> None:
    mark = add(ctx, "theirs", provenance.DECISION)
    content = ctx.paths.sensor("theirs").read_bytes()
    provenance.mark_unread(ctx.paths, provenance.SENSOR, "theirs", content)
    other = add(ctx, "mine", provenance.HUMAN)
    readings = {r.name: r for r in run_user_sensors(ctx, ctx.knobs(), OFF)}
    assert readings["sensor-mine"].ok and other.exists()
    r = readings["sensor-theirs"]
    assert not r.ok and not mark.exists()
    assert r.error is not None and "runs only under shell_policy's sandbox" in r.error
    # edited by hand since (the marker no longer matches): the human's edit runs
    ctx.paths.sensor("theirs").write_bytes(content + b"# reviewed\n")
    [_, r] = run_user_sensors(ctx, ctx.knobs(), OFF)
    assert r.ok and mark.exists()
