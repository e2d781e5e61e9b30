"""Woken by the change (issue 56): a real answer, a real file change, a real worker exit wake
whoever waits on them at once, not at the next poll or interval."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import answer
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from tests.helpers import (
    Cli,
    await_event,
    outside_env,
    runner_calls,
    stop_sessions,
    wait_until,
    wire,
)

pytestmark = pytest.mark.timeout(60)


def test_an_answer_reaches_a_blocked_ask_at_once(ctx: Ctx) -> None:
    """With the ask's poll at a minute, only the answer's own arrival can wake it in time."""
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_ASK_POLL_MS="60000")
    p = subprocess.Popen(
        [sys.executable, "-m", "looop", "ask", "w1", "--prompt", "Ship?"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        assert "waiting for an answer to w1-1" in p.stderr.readline()
        wait_until(lambda: (ctx.paths.asks / "w1-1.json").exists(), 20)
        # asleep in its wait before the answer comes (an answer already there is read at
        # once): no answers/ folder yet, as in a home's first ask, which went unwatched
        wait_until(lambda: _asleep(p.pid), 20)
        assert not ctx.paths.answers.exists()
        start = time.monotonic()
        answer(ctx.paths.asks, ctx.paths.answers, "w1-1", "ship it", time.time())
        out, _ = p.communicate(timeout=20)
        took = time.monotonic() - start
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert p.returncode == 0 and out == "ship it\n"
    assert took < 5.0, f"the answer took {took:.2f}s to reach the waiting ask"


def _asleep(pid: int) -> bool:
    """Whether the process sleeps in select or poll (its wait for a change or its time)."""
    try:
        return "poll_schedule_timeout" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def _pulse(ctx: Ctx) -> subprocess.Popen[bytes]:
    env = outside_env()
    env.update(LOOOP_DATA_DIR=str(ctx.paths.data), LOOOP_LOG_FORMAT="json", LOOOP_INTERVAL="3600")
    return subprocess.Popen(
        [sys.executable, "-m", "looop", "pulse"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)


def test_a_watched_file_change_starts_a_beat_that_decides_within_a_second_or_so(
    ctx: Ctx,
) -> None:
    """An hour's interval: only the change itself can bring the decide this soon."""
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 3)
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    sensor = ctx.paths.sensors / "inbox.sh"
    sensor.write_text(
        '#!/bin/sh\n# looop:watch=inbox.txt\nprintf \'{"inbox": "%s"}\' "$(cat inbox.txt)"\n'
    )
    sensor.chmod(0o755)
    p = _pulse(ctx)
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep")  # the first beat decided; asleep for an hour now
        assert runner_calls(script) == 1
        start = time.monotonic()
        store.atomic_write(ctx.paths.data / "inbox.txt", "a new mail\n")
        await_event(p.stdout, "pulse.woken", timeout=10)
        await_event(p.stdout, "tick.decided", timeout=10)
        took = time.monotonic() - start
    finally:
        _stop(p)
    assert runner_calls(script) == 2
    assert took < 3.0, f"the change took {took:.2f}s to reach the decider"


def test_a_watched_file_changed_right_after_a_woken_quiet_beat_wakes_a_beat(ctx: Ctx) -> None:
    """A woken beat that found nothing new re-arms its watches: a change written the moment
    its sleep is said is a change all the same, not swallowed by that re-arm."""
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 5)
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    sensor = ctx.paths.sensors / "inbox.sh"
    sensor.write_text(
        '#!/bin/sh\n# looop:watch=inbox.txt\nprintf \'{"inbox": "%s"}\' "$(cat inbox.txt)"\n'
    )
    sensor.chmod(0o755)
    inbox = ctx.paths.data / "inbox.txt"
    p = _pulse(ctx)
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep")  # asleep for an hour
        inbox.write_text("mail 1\n")
        await_event(p.stdout, "pulse.woken", timeout=10)
        await_event(p.stdout, "sleep", timeout=30)  # decided on it, asleep again
        woken = []
        for _ in range(10):  # each write lands the moment the quiet beat before says its sleep
            inbox.write_text("mail 1\n")  # the same text: a woken beat that finds nothing new
            woken.append(await_event(p.stdout, "pulse.woken", timeout=10))
            await_event(p.stdout, "sleep", timeout=30)
    finally:
        _stop(p)
    assert all(ev["msg"].startswith("woken by a change") for ev in woken)


def test_a_worker_exit_wakes_the_pulse_at_once(ctx: Ctx) -> None:
    wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 5)
    p = _pulse(ctx)
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep")  # asleep for an hour
        spawn(ctx.paths.data, "w1", ["cat"], cwd=ctx.paths.data, env=outside_env())
        await_event(p.stdout, "pulse.woken", timeout=10)  # a worker started
        await_event(p.stdout, "sleep", timeout=30)  # that beat is done: asleep again
        kill(ctx.paths.data, "w1")  # it ends
        assert wait(ctx.paths.data, "w1", 20, ctx.clock) is not None
        ev = await_event(p.stdout, "pulse.woken", timeout=10)
    finally:
        stop_sessions(ctx.paths.data)
        _stop(p)
    assert ev["msg"].startswith("woken by a change")


_GIT_ENV = {
    "GIT_AUTHOR_NAME": "T",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "T",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, **_GIT_ENV, "HOME": str(cwd)}
    subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=30, check=True)


def _woken_within_a_second(ctx: Ctx, script: Path, change: Callable[[], object]) -> None:
    """A pulse asleep for an hour after its first decide; `change` after that quiet start
    wakes it within a second, and the woken beat decides on what changed."""
    p = _pulse(ctx)
    try:
        assert p.stdout is not None
        await_event(p.stdout, "sleep", timeout=30)
        assert runner_calls(script) == 1
        start = time.monotonic()
        change()
        await_event(p.stdout, "pulse.woken", timeout=5)
        took = time.monotonic() - start
        await_event(p.stdout, "tick.decided", timeout=20)
    finally:
        _stop(p)
    assert took < 1.0, f"the change took {took:.2f}s to wake the pulse"
    assert runner_calls(script) == 2


def test_a_commit_wakes_the_pulse_through_the_packs_git_sensor(
    ctx: Ctx, cli: Cli, tmp_path: Path
) -> None:
    """`looop sensor add git` declares the repository's HEAD, index and refs: a commit in a
    worktree (its HEAD and index in the main repository's git dir) wakes a running pulse."""
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 3)
    main, tree = tmp_path / "repo", tmp_path / "tree"
    main.mkdir()
    _git(main, "init", "-q", "-b", "main")
    _git(main, "commit", "-q", "--allow-empty", "-m", "first")
    _git(main, "worktree", "add", "-q", "-b", "topic", str(tree))
    code, out, err = cli("sensor", "add", "git", "--repo", str(tree))
    assert code == 0, (out, err)
    _woken_within_a_second(
        ctx, script, lambda: _git(tree, "commit", "-q", "--allow-empty", "-m", "second")
    )


@pytest.mark.parametrize("edited", ["goals/x.md", "PLAYBOOK.md", "sensors/new.sh"])
def test_a_hand_edit_of_the_policy_wakes_the_pulse(ctx: Ctx, edited: str) -> None:
    """The world hash reads PLAYBOOK.md, goals/ and the sensors: an edit by hand (in place,
    as an editor saves) or a new sensor is read at once, not at the next beat."""
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "quiet"}}] * 3)
    for d in ("goals", "sensors"):
        (ctx.paths.data / d).mkdir(exist_ok=True)
    (ctx.paths.data / "goals/x.md").write_text("# x\nship it\n")
    (ctx.paths.data / "PLAYBOOK.md").write_text("# Playbook\nbe careful\n")
    target = ctx.paths.data / edited

    def edit() -> None:
        with target.open("w") as f:
            f.write('#!/bin/sh\necho \'{"signal": {"new": 1}}\'\n')
        target.chmod(0o755)

    _woken_within_a_second(ctx, script, edit)
    if edited.startswith("sensors/"):
        assert "sensor-new" in " ".join(os.listdir(ctx.paths.snapshots))  # it ran
