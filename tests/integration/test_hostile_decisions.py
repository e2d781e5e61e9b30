"""Whole beats whose runner leaves something hostile at .decision.json, or valid JSON that
Python chokes on: each beat ends as a failed beat (backoff, LAST FAILURE), never a hang or a
crash, and the next beat starts clean."""

from __future__ import annotations

import json
import os
import shlex
import stat

import pytest

from looop.core.context import Ctx
from looop.loop import guards
from looop.loop.tick import tick

pytestmark = pytest.mark.timeout(60)


def _runner(ctx: Ctx, shell: str) -> None:
    """A tick command that is a shell snippet run in the data dir (as agents run)."""
    cfg = {
        "default": "sh",
        "runners": {"sh": {"tick": f"sh -c {shlex.quote(shell)}", "worker": "cat"}},
        "max_daily_usd": 0,
    }
    ctx.paths.config.write_text(json.dumps(cfg))


def _failed_cleanly(ctx: Ctx, needle: str) -> None:
    out = tick(ctx, force=True)
    assert out.status == "failed", out
    assert needle in (out.error or ""), out.error
    lf = guards.read_last_failure(ctx.paths)
    assert lf is not None and needle in json.dumps(lf)
    b = guards.read_backoff(ctx.paths, ctx.clock.now())
    assert b is not None and b.fails == 1
    # discarded: nothing stands at the decision path any more
    assert not os.path.lexists(ctx.paths.decision)
    assert not ctx.paths.journal.exists()


def test_fifo_decision_does_not_hang_the_beat(ctx: Ctx) -> None:
    _runner(ctx, "mkfifo .decision.json")
    _failed_cleanly(ctx, "not a regular file")


def test_directory_decision_is_discarded_and_later_beats_work(ctx: Ctx) -> None:
    _runner(ctx, "mkdir -p .decision.json/inner && echo x > .decision.json/inner/f")
    _failed_cleanly(ctx, "directory")
    guards.clear_backoff(ctx.paths)
    _runner(ctx, 'echo \'{"action":"noop","reason":"ok"}\' > .decision.json')
    assert tick(ctx, force=True).status == "decided"


def test_symlink_decision_is_never_followed(ctx: Ctx, tmp_path: os.PathLike[str]) -> None:
    secret = os.path.join(str(tmp_path), "elsewhere.json")
    with open(secret, "w") as f:
        f.write('{"action":"run_shell","cmd":"touch pwned"}')
    _runner(ctx, f"ln -s {shlex.quote(secret)} .decision.json")
    _failed_cleanly(ctx, "symlink")
    assert not (ctx.paths.data / "pwned").exists()
    assert os.path.exists(secret)  # the link went, not its target


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device needs root")
def test_device_decision_is_not_opened_for_long(ctx: Ctx) -> None:
    # /dev/zero as a decision would read forever without a cap
    dev = os.stat("/dev/zero").st_rdev
    _runner(ctx, f"mknod .decision.json c {os.major(dev)} {os.minor(dev)}")
    _failed_cleanly(ctx, "not a regular file")


def test_socket_decision(ctx: Ctx) -> None:
    prog = "import socket; socket.socket(socket.AF_UNIX).bind('.decision.json')"
    _runner(ctx, f"python3 -c {shlex.quote(prog)}")
    _failed_cleanly(ctx, "not a regular file")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ('{"action":"run_shell","cmd":"echo \\ud800"}', "unpaired surrogate"),
        ('{"action":"noop","reason":"\\udfff tail"}', "unpaired surrogate"),
        ('{"action":"write_goal","id":"g","body":"x","\\ud800":1}', "unpaired surrogate"),
        ('{"action":"noop","n":' + "9" * 5000 + "}", "digits"),
        ('{"action":"noop","n":1e400}', "too large"),
        ('{"action":"noop","n":NaN}', "not a JSON number"),
        ('{"action":"noop","n":' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ('{"action":"write_schedule","name":"s","in_s":1e20}', "in_s"),
        # (an integer past ten years saturates: tests/unit/human/test_schedules_v1.py)
        ('{"action":"write_schedule","name":"s","every_s":1e11}', "every_s"),
        ('{"action":"send_key","id":"w","keys":["\\u0000"]}', "NUL"),
    ],
)
def test_valid_json_python_chokes_on_is_a_failed_beat(ctx: Ctx, raw: str, needle: str) -> None:
    path = ctx.paths.data.parent / "decision.raw"
    path.write_text(raw)
    _runner(ctx, f"cp {shlex.quote(str(path))} .decision.json")
    _failed_cleanly(ctx, needle)
    assert not (ctx.paths.data / "schedules").exists() or not list(
        (ctx.paths.data / "schedules").iterdir()
    )


def test_a_sensor_reading_with_a_lone_surrogate_is_a_failed_sensor_not_a_crash(ctx: Ctx) -> None:
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    s = ctx.paths.sensor("weird")
    s.write_text('#!/bin/sh\necho \'{"signal":{"a":"\\ud800"},"detail":"x"}\'\n')
    s.chmod(s.stat().st_mode | stat.S_IXUSR)
    _runner(ctx, 'echo \'{"action":"noop","reason":"ok"}\' > .decision.json')
    out = tick(ctx, force=True)
    assert out.status == "decided", out.error
    assert "sensor-weird" in out.notes
    snap = json.loads((ctx.paths.snapshots / "sensor-weird.json").read_text())
    assert "unpaired surrogate" in snap["detail"]["message"]
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "unpaired surrogate" in prompt


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ('{"action":"send_key","id":"w","keys":' + json.dumps(["Enter"] * 65) + "}", "at most"),
        ('{"action":"send_key","id":"w","keys":["' + "x" * 65 + '"]}', "at most"),
        ('{"action":"write_schedule","name":"s","cron":"' + "* " * 150 + '"}', "cron"),
        ('{"action":"write_schedule","name":"s","cron":"* * * * *","tz":"' + "A" * 70 + '"}', "tz"),
    ],
)
def test_counts_and_lengths_in_decisions_have_bounds(ctx: Ctx, raw: str, needle: str) -> None:
    path = ctx.paths.data.parent / "decision.raw"
    path.write_text(raw)
    _runner(ctx, f"cp {shlex.quote(str(path))} .decision.json")
    _failed_cleanly(ctx, needle)
