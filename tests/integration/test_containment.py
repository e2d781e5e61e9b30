"""Whole beats whose sensors and run_shell leave escapees: they die, the workers do not."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import pytest

from looop.core.cgroup import Pen
from looop.core.context import Ctx
from looop.loop.tick import tick
from looop.sessions.client import expect, send
from looop.sessions.state import get_session
from tests.clocks import FixedClock
from tests.helpers import stop_sessions, wire
from tests.procwatch import FIXTURES, Zombies, children, describe, kill_all, tagged

pytestmark = pytest.mark.timeout(120)

ECHO_AGENT = (
    'bash -c \'test -s "$1" && echo ready; while IFS= read -r line; do echo "got:$line"; '
    "done' agent {{prompt_file}}"
)


def _escapees(tag: str) -> str:
    py, esc = sys.executable, FIXTURES / "escape.py"
    return (
        f'export ESCAPE_TAG="{tag}"; setsid sleep 1000 >/dev/null 2>&1 </dev/null & '
        f'"{py}" "{esc}" doublefork; "{py}" "{esc}" pgrp; "{py}" "{esc}" chain; '
    )


@pytest.mark.parametrize("beat", ["tick", "pulse"])
def test_a_worker_survives_beats_whose_sensors_and_shell_leave_escapees(
    ctx: Ctx, zombies: Zombies, beat: str
) -> None:
    """`pulse`: the beats keep their sensors' pen, as the pulse's do (core/cgroup.Pen)."""
    ctx = replace(ctx, clock=FixedClock(t=time.time()), pen=Pen() if beat == "pulse" else None)
    data = ctx.paths.data
    tag = str(data)
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    sensor = ctx.paths.sensor("leaky")
    sensor.write_text(
        "#!/usr/bin/env bash\n"
        + _escapees(tag)
        + '\nprintf \'{"signal":{"beat":%s}}\' "$(cat beat)"\n'
    )
    sensor.chmod(0o755)
    shell = _escapees(tag) + "echo ran"
    wire(
        ctx,
        [
            {"when": '"beat":1', "decision": {"action": "start_worker", "id": "w1", "prompt": "x"}},
            {"when": '"beat":2', "decision": {"action": "run_shell", "cmd": shell, "reason": "r"}},
            {"when": '"beat":3', "decision": {"action": "noop", "reason": "watch"}},
        ],
        worker=ECHO_AGENT,
    )
    supervisor: int | None = None
    try:
        for beat in (1, 2, 3):
            (data / "beat").write_text(str(beat))
            out = tick(ctx)
            assert out.status == "decided", out
            left = tagged("ESCAPE_TAG", tag)
            assert left == [], f"escapees outlived beat {beat}: {describe(left)}"
            assert zombies() == [], describe(zombies())
            s = get_session(data, "w1")
            assert s.alive, f"the worker died in beat {beat}"
            supervisor = supervisor or s.supervisor_pid
            assert s.supervisor_pid == supervisor  # the same one, never restarted
            assert supervisor not in children()  # adopted by init, not by the pulse
        # beat 3's prompt showed the agent what run_shell left behind
        prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
        assert "killed 5 background process(es)" in prompt, prompt[-2000:]
        # and it still works
        sent = send(data, "w1", "still here")
        code, _, _ = expect(
            data, "w1", r"got:still here", since=sent["offset"], timeout_s=20, clock=ctx.clock
        )
        assert code == 0
    finally:
        if ctx.pen is not None:
            ctx.pen.close()
        stop_sessions(data)
        kill_all(tagged("ESCAPE_TAG", tag))
