"""Whole beats with the scripted runner: sense, gate, decide, execute, journal, commit."""

from __future__ import annotations

import errno
import json
import os

import pytest

from looop.core.context import Ctx
from looop.loop import guards
from looop.loop.pulse import Pulse
from looop.loop.tick import tick
from tests.clocks import FixedClock
from tests.helpers import events, runner_calls, wire, with_env

pytestmark = pytest.mark.timeout(60)


def _journal(ctx: Ctx) -> list[str]:
    p = ctx.paths.journal
    return [ln for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def _sensor(ctx: Ctx, name: str, body: str) -> None:
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    p = ctx.paths.sensor(name)
    p.write_text("#!/usr/bin/env bash\n" + body + "\n")
    p.chmod(0o755)


def test_decide_then_skip_unchanged_world(ctx: Ctx) -> None:
    script = wire(
        ctx,
        [
            {
                "decision": {
                    "action": "write_goal",
                    "id": "ship",
                    "body": "goal: ship v1",
                    "journal": "set ship",
                }
            }
        ],
    )
    out = tick(ctx)
    assert out.status == "decided" and out.executed is not None
    assert (ctx.paths.goals / "ship.md").read_text() == "goal: ship v1\n"
    assert _journal(ctx)[-1].endswith(" set ship")
    assert guards.read_last_hash(ctx.paths) != ""
    assert runner_calls(script) == 1
    # the goal it wrote changed the world: the next beat decides again (script exhausted -> noop)
    assert tick(ctx).status == "decided"
    assert runner_calls(script) == 2
    # now nothing changes: no runner call at all
    out = tick(ctx)
    assert out.status == "skip" and runner_calls(script) == 2
    assert "tick.skip" in events(ctx)
    run_dir = ctx.paths.run_dir(out.run_id or "") if out.run_id else None
    assert run_dir is None


def test_sensor_reading_wakes_and_run_shell_moves_world(ctx: Ctx) -> None:
    _sensor(
        ctx, "inbox", 'printf \'{"signal":{"n":%d},"detail":{}}\' $(ls inbox 2>/dev/null | wc -l)'
    )
    (ctx.paths.data / "inbox").mkdir()
    (ctx.paths.data / "inbox" / "a").write_text("x")
    script = wire(
        ctx,
        [
            {
                "when": '"n":1',
                "decision": {
                    "action": "run_shell",
                    "cmd": "rm inbox/a && echo filed",
                    "reason": "file it",
                },
            },
            {"when": "RUN_SHELL OUTPUT", "decision": {"action": "noop", "reason": "saw output"}},
        ],
    )
    out = tick(ctx)
    assert out.status == "decided" and out.follow_up_s == 5
    assert not (ctx.paths.data / "inbox" / "a").exists()
    out = tick(ctx)  # reading changed n:1 -> n:0, and the prompt shows the shell output
    assert out.status == "decided" and out.executed is not None
    assert out.executed.kind == "noop" and runner_calls(script) == 2
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "filed" in prompt
    assert not ctx.paths.last_shell.exists()  # shown once


@pytest.mark.parametrize(
    ("step", "code", "needle"),
    [
        ({"exit": 3, "stderr": "provider exploded"}, "tick.failed", "exited 3"),
        ({"no_decision": True}, "tick.no_decision", "no .decision.json"),
        ({"garbage": "I think you should do the thing"}, "tick.no_decision", "no .decision.json"),
        ({"raw": "{not json"}, "tick.failed", "JSON"),
        ({"raw": '{"action":"launch_missiles"}'}, "tick.failed", "launch_missiles"),
        (
            {"raw": '{"action":"write_goal","id":"../etc/x","body":"b"}'},
            "tick.failed",
            "invalid goal id",
        ),
        (
            {"raw": '{"action":"write_goal","id":".hidden","body":"b"}'},
            "tick.failed",
            "invalid goal id",
        ),
        (
            {"raw": '{"action":"write_sensor","name":"a/b","script":"x"}'},
            "tick.failed",
            "invalid sensor",
        ),
        ({"raw": '{"action":"write_goal","id":"x"}'}, "tick.failed", "body"),
        ({"raw": '{"action":"noop","reason":"' + "x" * 300000 + '"}'}, "tick.failed", "bytes"),
    ],
)
def test_runner_and_decision_faults_fail_the_beat(
    ctx: Ctx, step: dict[str, object], code: str, needle: str
) -> None:
    wire(ctx, [step])
    before = _journal(ctx)
    out = tick(ctx)
    assert out.status == "failed"
    assert needle in (out.error or ""), out.error
    assert code in events(ctx)
    assert _journal(ctx) == before  # nothing journaled
    assert guards.read_last_hash(ctx.paths) == ""  # nothing committed
    lf = guards.read_last_failure(ctx.paths)
    assert lf is not None and lf["code"] == code and "\n" not in lf["error"]
    assert not ctx.paths.decision.exists()
    assert (ctx.paths.run_dir(out.run_id or "") / "result.json").exists()


def test_non_utf8_decision_is_rejected(ctx: Ctx) -> None:
    wire(ctx, [{"no_decision": True}])
    # a runner that writes raw invalid bytes
    cfg = json.loads(ctx.paths.config.read_text())
    cfg["runners"]["scripted"]["tick"] = "printf '\\xff\\xfe{' > .decision.json"
    ctx.paths.config.write_text(json.dumps(cfg))
    out = tick(ctx)
    assert out.status == "failed" and "UTF-8" in (out.error or "")


def test_failure_arms_backoff_and_last_failure_reaches_next_prompt(
    ctx: Ctx, clock: FixedClock
) -> None:
    script = wire(
        ctx,
        [
            {"exit": 2, "stderr": "rate limited"},
            {"decision": {"action": "noop", "reason": "ok now"}},
        ],
    )
    assert tick(ctx).status == "failed"
    out = tick(ctx)  # same world, inside the 60 s window
    assert out.status == "backoff" and runner_calls(script) == 1
    clock.advance(61)
    out = tick(ctx)
    assert out.status == "decided" and runner_calls(script) == 2
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "LAST FAILURE" in prompt and "exited 2" in prompt
    assert not ctx.paths.backoff.exists() and not ctx.paths.last_failure.exists()


def test_policy_edit_cuts_backoff_short(ctx: Ctx) -> None:
    script = wire(ctx, [{"exit": 2}, {"decision": {"action": "noop"}}])
    assert tick(ctx).status == "failed"
    assert tick(ctx).status == "backoff"
    ctx.paths.playbook.write_text("# new rules\n")
    assert tick(ctx).status == "decided"
    assert runner_calls(script) == 2 and "tick.backoff_cut" in events(ctx)


def test_backoff_caps_at_configured_max(ctx: Ctx, clock: FixedClock) -> None:
    script = wire(ctx, [{"exit": 1}] * 6)
    waits = []
    for _ in range(5):
        assert tick(ctx).status == "failed"
        b = guards.read_backoff(ctx.paths, clock.now())
        assert b is not None
        waits.append(guards.backoff_delay(b.fails, 300))
        clock.advance(waits[-1] + 1)
    assert waits == [60, 120, 240, 300, 300] and runner_calls(script) == 5


def test_config_errors_idle_without_backoff(ctx: Ctx) -> None:
    ctx.paths.config.write_text('{"tick_command": 42}')
    out = tick(ctx)
    assert out.status == "error" and "tick_command" in (out.error or "")
    assert not ctx.paths.backoff.exists()
    ctx.paths.config.write_text('{"worker_command": "x {{prompt_file}}"}')
    out = tick(ctx)
    assert out.status == "error" and "looop init" in (out.error or "")


def test_stale_decision_is_never_executed(ctx: Ctx) -> None:
    script = wire(
        ctx,
        [
            {"stale": {"action": "write_goal", "id": "evil", "body": "x"}, "exit": 2},
            {"no_decision": True},
        ],
    )
    assert tick(ctx).status == "failed"
    assert not ctx.paths.decision.exists()
    ctx.paths.playbook.write_text("edit to cut the backoff\n")
    out = tick(ctx)
    assert out.status == "failed" and runner_calls(script) == 2
    assert not (ctx.paths.goals / "evil.md").exists()


def test_leftover_decision_file_purged_before_runner(ctx: Ctx) -> None:
    wire(ctx, [{"no_decision": True}])
    ctx.paths.decision.write_text('{"action":"write_goal","id":"evil","body":"x"}')
    out = tick(ctx)
    assert out.status == "failed" and "tick.stale_decision" in events(ctx)
    assert not (ctx.paths.goals / "evil.md").exists()


def test_runner_timeout_kills_and_fails(ctx: Ctx) -> None:
    c = with_env(ctx, LOOOP_TICK_TIMEOUT_SECS="1")
    wire(c, [{"hang": True}])
    out = tick(c)
    assert out.status == "failed" and "timed out" in (out.error or "")


def test_prompt_file_placeholder_runner(ctx: Ctx) -> None:
    wire(
        ctx,
        [{"when": "=== PLAYBOOK ===", "decision": {"action": "noop", "reason": "read it"}}],
        prompt_file=True,
    )
    out = tick(ctx)
    assert out.status == "decided"
    assert out.executed is not None and "read it" in out.executed.summary


def test_corrupt_last_hash_fails_closed(ctx: Ctx) -> None:
    script = wire(ctx, [{"decision": {"action": "run_shell", "cmd": "echo once >> ran"}}])
    ctx.paths.last_tick_hash.write_text("garbage-not-a-hash\n")
    out = tick(ctx)
    assert out.status == "error" and runner_calls(script) == 0
    assert not (ctx.paths.data / "ran").exists()


def test_next_interval_forces_one_redecide(ctx: Ctx) -> None:
    script = wire(
        ctx,
        [
            {"decision": {"action": "noop", "next_interval_s": 2}},
            {"decision": {"action": "noop", "next_interval_s": 10000}},
            {"decision": {"action": "noop"}},
        ],
    )
    p = Pulse(ctx)
    out = tick(ctx, force=True)
    secs, _, force = p.choose_sleep(out)
    assert (secs, force) == (5, True)  # clamped up to 5
    out = tick(ctx, force=force)  # world unchanged, but forced
    assert out.status == "decided" and runner_calls(script) == 2
    secs, _, force = p.choose_sleep(out)
    assert (secs, force) == (300, True)  # clamped down to max_next_interval
    out = tick(ctx, force=force)
    secs, reason, force = p.choose_sleep(out)
    assert not force and reason == "busy"
    assert tick(ctx, force=force).status == "skip"


def test_first_beat_of_a_pulse_decides(ctx: Ctx) -> None:
    script = wire(ctx, [{"decision": {"action": "noop"}}, {"decision": {"action": "noop"}}])
    assert tick(ctx).status == "decided"
    assert tick(ctx).status == "skip"
    Pulse(ctx, max_beats=1).run()
    assert runner_calls(script) == 2
    assert not ctx.paths.pid_file.exists()


def test_runs_pruned_to_keep(ctx: Ctx) -> None:
    c = with_env(ctx, LOOOP_RUNS_KEEP="2")
    wire(c, [{"decision": {"action": "noop"}}] * 4)
    for _ in range(4):
        assert tick(c, force=True).status == "decided"
    assert len(os.listdir(c.paths.runs)) == 2


def test_output_log_is_readable(ctx: Ctx) -> None:
    wire(
        ctx,
        [
            {
                "stream": [
                    json.dumps(
                        {
                            "type": "assistant",
                            "message": {
                                "content": [
                                    {"type": "text", "text": "Looking at the goals."},
                                    {
                                        "type": "tool_use",
                                        "name": "Bash",
                                        "input": {"command": "ls goals"},
                                    },
                                ]
                            },
                        }
                    )
                ],
                "decision": {"action": "noop"},
            }
        ],
    )
    out = tick(ctx)
    log = (ctx.paths.run_dir(out.run_id or "") / "output.log").read_text()
    assert "Looking at the goals." in log and "Bash" in log and "ls goals" in log
    assert ctx.paths.tick_log.read_text() == log


def _prefix(prompt: str) -> str:
    cut = min(
        (
            prompt.index(h)
            for h in (
                "=== WHAT CHANGED",
                "=== RUN_SHELL OUTPUT",
                "=== FLAPPING",
                "=== LAST FAILURE",
                "=== NOW",
            )
            if h in prompt
        ),
    )
    return prompt[:cut]


def test_prompt_prefix_is_byte_identical_between_beats(ctx: Ctx, clock: FixedClock) -> None:
    """Provider prompt caching: nothing time-varying before the volatile sections."""
    from looop.seed import ensure_data_dir

    ctx.paths.data.rmdir()
    ensure_data_dir(ctx.paths)  # the real starter, including today.sh and two goals
    (ctx.paths.goal_activity).write_text(json.dumps({"setup": int(clock.now()) - 3600}))
    wire(ctx, [])
    first = tick(ctx, dry_run=True)
    clock.advance(240)
    second = tick(ctx, dry_run=True)
    p1, p2 = first.prompt_text or "", second.prompt_text or ""
    assert p1 != p2  # NOW moved
    assert _prefix(p1) == _prefix(p2)
    assert len(_prefix(p1)) > 0.8 * len(p1)
    # the goal's age (v1.0's sys-goals age_s) is said by when it was last acted on, which does
    # not move between acts; the age itself is not shown
    late = p2[p2.index("=== READINGS THAT MOVE") :]
    setup = json.loads(late.split("--- sys-goals.json goal setup\n")[1].splitlines()[0])
    assert setup["detail"]["last_acted"] and "age" not in setup
    assert "age_s" not in p2


def test_flapping_sensor_stops_waking_the_loop_and_is_told_once(ctx: Ctx) -> None:
    (ctx.paths.data / "flip").write_text("0")
    _sensor(ctx, "clock", 'printf \'{"signal":{"t":"%s"}}\' "$(cat flip)"')
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "seen"}}] * 10)
    assert tick(ctx).status == "decided"  # the first decision on record
    statuses = []
    for i in range(1, 8):  # the signal toggles every beat: 7 flaps
        (ctx.paths.data / "flip").write_text(str(i % 2))
        statuses.append(tick(ctx).status)
    assert statuses == ["decided"] + ["skip"] * 6  # one change may be real; then damped
    assert runner_calls(script) == 2
    assert events(ctx).count("sense.flapping") == 1
    # the reading itself stays current while damped
    snap = json.loads((ctx.paths.snapshots / "sensor-clock.json").read_text())
    assert snap["signal"] == {"t": "1"}
    # a real change still wakes the loop, and that decide is told once
    (ctx.paths.goals / "new.md").write_text("goal: new\n")
    out = tick(ctx)
    assert out.status == "decided"
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    flapping = prompt.split("=== FLAPPING SENSORS ===")[1]
    assert "sensor-clock started flapping" in flapping and "Damped now: sensor-clock" in flapping
    (ctx.paths.goals / "new.md").write_text("goal: newer\n")
    out = tick(ctx)
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert out.status == "decided" and "FLAPPING SENSORS" not in prompt
    # it stops flapping on a value other than the pinned one ("1", the last decided on):
    # damped while it settles, then that value counts again
    (ctx.paths.data / "flip").write_text("2")
    settled_on = None
    for n in range(30):
        if tick(ctx).status == "decided":
            settled_on = n
            break
    assert settled_on is not None and 0 < settled_on < 5  # damped a few beats, then counted
    assert events(ctx).count("sense.settled") == 1
    prompt = (ctx.paths.run_dir(_last_run(ctx)) / "prompt.md").read_text()
    assert "sensor-clock settled" in prompt and "snap:sensor-clock signal" in prompt


def _last_run(ctx: Ctx) -> str:
    return sorted(p.name for p in ctx.paths.runs.iterdir() if p.is_dir())[-1]


def test_old_noop_on_an_unchanged_world_is_revisited(ctx: Ctx, clock: FixedClock) -> None:
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "nothing"}}] * 3)
    assert tick(ctx).status == "decided"
    clock.advance(3600)
    assert tick(ctx).status == "skip"
    clock.advance(21600)
    out = tick(ctx)
    assert out.status == "decided" and runner_calls(script) == 2
    assert "tick.revisit" in events(ctx)
    assert tick(ctx).status == "skip"  # the revisit's own noop restarts the clock


def test_nudge_survives_a_pulse_restart_and_a_gated_beat(ctx: Ctx, clock: FixedClock) -> None:
    c = with_env(ctx, LOOOP_INTERVAL="600")
    wire(
        c,
        [
            {"decision": {"action": "noop", "next_interval_s": 120}},
            {"exit": 2},
            {"decision": {"action": "noop"}},
        ],
    )
    out = tick(c, force=True)
    assert out.status == "decided" and c.paths.next_wake.exists()
    restarted = Pulse(c)  # a new pulse process: only the file remembers the nudge
    clock.advance(30)
    idle = tick(c)
    assert idle.status == "skip"
    secs, reason, force = restarted.choose_sleep(idle)
    assert (secs, reason, force) == (90, "pending nudge", True)
    clock.advance(90)
    failed = tick(c, force=force)
    assert failed.status == "failed" and c.paths.next_wake.exists()
    clock.advance(61)
    held = tick(c)  # unchanged world, no force: skipped before any decide
    secs, _, force = restarted.choose_sleep(held)
    assert force and secs == 600  # overdue: keep forcing at the normal cadence
    done = tick(c, force=force)
    assert done.status == "decided"
    restarted.choose_sleep(done)
    assert not c.paths.next_wake.exists()


def test_schedule_wakes_the_loop_once_per_period(ctx: Ctx, clock: FixedClock) -> None:
    c = with_env(ctx, LOOOP_NOOP_TTL="0")
    script = wire(
        c,
        [
            {
                "decision": {
                    "action": "write_schedule",
                    "name": "poll",
                    "every_s": 600,
                    "note": "look at the queue",
                }
            }
        ]
        + [{"decision": {"action": "noop", "reason": "handled"}}] * 5,
    )
    assert tick(c).status == "decided"  # writes the schedule: the world changed
    assert tick(c).status == "decided"  # sees it pending, noops
    assert tick(c).status == "skip"
    clock.advance(599)
    assert tick(c).status == "skip"
    clock.advance(1)
    out = tick(c)
    assert out.status == "decided" and runner_calls(script) == 3
    prompt = (c.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "look at the queue" in prompt and "sys-schedules" in prompt
    assert tick(c).status == "skip"  # the same period never wakes twice
    clock.advance(86400)  # the pulse was down for a day: 144 missed periods, one wake
    assert tick(c).status == "decided"
    assert tick(c).status == "skip" and runner_calls(script) == 4


def test_pulse_never_sleeps_past_a_due_schedule(ctx: Ctx, clock: FixedClock) -> None:
    from looop.act.executor import execute
    from looop.act.parse import decision_from_obj
    from looop.loop.beat import TickOutcome

    c = with_env(ctx, LOOOP_INTERVAL="300")
    pulse = Pulse(c)
    assert pulse.choose_sleep(TickOutcome(status="skip"))[:2] == (300, "idle")
    execute(c, c.knobs(), decision_from_obj({"action": "write_schedule", "name": "ci", "in_s": 42}))
    secs, reason, _ = pulse.choose_sleep(TickOutcome(status="skip"))
    assert reason == "schedule ci due" and 42 < secs <= 44
    clock.advance(secs)
    assert (c.paths.schedules / "ci.json").exists()
    from looop.human.schedules import probe

    assert probe(c.paths.schedules, clock)["signal"]["ci"] == "due"  # the wake lands after it
    # once due it never changes again, so it no longer shortens the sleep
    assert pulse.choose_sleep(TickOutcome(status="skip"))[:2] == (300, "idle")


def test_a_skip_beat_rewrites_no_unchanged_snapshot(ctx: Ctx) -> None:
    # every reading is compared before it is written: no temp file, no fsync, no rename
    _sensor(ctx, "steady", 'echo \'{"signal":{"ok":true},"detail":"same"}\'')
    _sensor(ctx, "moving", 'echo "{\\"signal\\":1,\\"detail\\":\\"$RANDOM$RANDOM\\"}"')
    wire(ctx, [{"decision": {"action": "noop", "reason": "settled"}}])
    assert tick(ctx, force=True).status == "decided"

    def inodes() -> dict[str, int]:
        return {p.name: p.stat().st_ino for p in ctx.paths.snapshots.glob("*.json")}

    before = inodes()
    assert tick(ctx).status == "skip"
    after = inodes()
    assert set(after) == set(before)
    moved = sorted(n for n in after if after[n] != before[n])
    assert moved == ["sensor-moving.json"]  # only the reading whose bytes changed (its detail)


def test_backward_clock_step_during_backoff_retries_on_time(ctx: Ctx, clock: FixedClock) -> None:
    script = wire(ctx, [{"exit": 2}, {"decision": {"action": "noop", "reason": "ok"}}])
    assert tick(ctx).status == "failed"
    clock.advance(30)
    clock.t -= 86400  # the wall clock steps back a day; monotonic time runs on
    assert tick(ctx).status == "backoff"
    clock.advance(31)  # 61 s after the failure on the monotonic clock
    out = tick(ctx)
    assert out.status == "decided" and runner_calls(script) == 2


def _prompt(ctx: Ctx, run_id: str | None) -> str:
    return (ctx.paths.run_dir(run_id or "") / "prompt.md").read_text()


def test_a_forced_re_decide_says_why_in_what_changed(ctx: Ctx, clock: FixedClock) -> None:
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 4)
    first = tick(ctx)
    assert first.status == "decided"
    assert "forced re-decide" not in _prompt(ctx, first.run_id)  # the world was new
    human = tick(ctx, force=True, override_backoff=True)  # `looop tick --force`
    assert "forced re-decide (a human ran `looop tick --force`)" in _prompt(ctx, human.run_id)
    clock.advance(21600 + 3600)
    revisit = tick(ctx)  # the noop TTL ran out on an unchanged world
    assert revisit.status == "decided"
    assert "LOOOP_NOOP_TTL" in _prompt(ctx, revisit.run_id).split("=== WHAT CHANGED ===")[1]


def test_looop_tick_honours_a_due_nudge_as_the_pulse_does(ctx: Ctx, clock: FixedClock) -> None:
    from looop.loop.tick import tick_once

    script = wire(
        ctx,
        [
            {"decision": {"action": "noop", "next_interval_s": 120}},
            {"decision": {"action": "noop"}},
            {"decision": {"action": "noop"}},
        ],
    )
    assert tick_once(ctx, force=False).status == "decided"
    clock.advance(30)
    assert tick_once(ctx, force=False).status == "skip"  # not due yet
    clock.advance(100)
    out = tick_once(ctx, force=False)  # due: decides on the unchanged world, and says why
    assert out.status == "decided" and runner_calls(script) == 2
    assert "(next_interval_s) is due" in _prompt(ctx, out.run_id)
    assert not ctx.paths.next_wake.exists()
    assert tick_once(ctx, force=False).status == "skip"  # the nudge was spent


def test_a_full_disk_mid_beat_is_a_failed_beat_without_a_trace(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from looop.spend import statusspend

    wire(ctx, [{"decision": {"action": "noop"}}])

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.paths.data / ".x"))

    monkeypatch.setattr(statusspend, "note_decide", full)
    out = tick(ctx)
    assert out.status == "failed" and out.error is not None
    assert out.error.startswith("beat failed: No space left on device writing ")
    rows = [json.loads(ln) for ln in ctx.paths.events.read_text().splitlines()]
    crash = [r for r in rows if r["event"] == "tick_crash"]
    assert crash and "trace" not in crash[-1]  # the disk's fault: nothing for a developer
    assert "Traceback" not in ctx.paths.events.read_text()
    # a code error still keeps its trace
    monkeypatch.setattr(statusspend, "note_decide", lambda *_a, **_k: 1 / 0)
    tick(ctx, force=True, override_backoff=True)
    rows = [json.loads(ln) for ln in ctx.paths.events.read_text().splitlines()]
    crash = [r for r in rows if r["event"] == "tick_crash"]
    assert len(crash) == 2 and "ZeroDivisionError" in crash[-1]["trace"]


def test_a_move_whose_record_hits_a_full_disk_fails_the_beat_without_a_trace(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    wire(ctx, [{"decision": {"action": "write_goal", "id": "g", "body": "goal: g"}}])

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(guards, "commit_hash", full)
    out = tick(ctx)
    assert out.status == "failed" and out.error is not None and "No space left" in out.error
    assert (ctx.paths.goals / "g.md").exists()  # the move ran; only its record failed
    assert "Traceback" not in ctx.paths.events.read_text()


def test_used_up_inotify_is_said_by_status_and_doctor(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of watches, the pulse wakes on its clock alone: `status` and `doctor` say so."""
    from inotify_simple import INotify

    from looop.core.watching import Watcher
    from looop.loop.doctor import run_checks
    from looop.views.status import gather_status

    def out_of_watches(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    p = Pulse(ctx)
    with Watcher() as p.watcher:
        monkeypatch.setattr(INotify, "add_watch", out_of_watches)
        p._arm()
        said = gather_status(ctx.paths, ctx.env, ctx.clock)["clock_wakes"]
        assert "inotify is used up" in said and "sysctl" in said
        wakes = [c for c in run_checks(ctx) if c.name == "wakes"]
        assert [c.level for c in wakes] == ["warn"] and "interval" in wakes[0].detail
        monkeypatch.undo()
        p._arm()  # watches again: said no more
    assert not gather_status(ctx.paths, ctx.env, ctx.clock)["clock_wakes"]
