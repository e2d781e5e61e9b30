"""The second level of the pulse's supervision, read from files: when a verb brings a lost
pulse back, what cause `status` names, and how the revivals back off (home/revive.py)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import revive
from looop.views.status import gather_status
from looop.views.statustext import print_status
from tests.clocks import FixedClock


class Boot(FixedClock):
    """CLOCK_BOOTTIME the test moves."""

    def __init__(self) -> None:
        super().__init__()
        self.boot = 5000.0

    def boottime(self) -> float:
        return self.boot


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """An flock as a live process holds it (another open file: the probe sees it taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def _session(ctx: Ctx, **status: object) -> Path:
    sdir = ctx.paths.sessions / "pulse"
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "meta.json").write_text(json.dumps({"id": "pulse", "cmd": ["x"], "supervisor_pid": 77}))
    (sdir / "status.json").write_text(json.dumps({"id": "pulse", **status}))
    return sdir


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    monkeypatch.setattr(revive, "_start", lambda data, config, env: started.append(data))
    return started


def _wanted(ctx: Ctx) -> dict[str, object]:
    rec = revive.read_wanted(str(ctx.paths.data))
    assert rec is not None
    return rec


def test_a_lost_supervisor_of_a_wanted_pulse_is_revived_and_status_names_it(
    ctx: Ctx, starts: list[str]
) -> None:
    data = str(ctx.paths.data)
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    revive.want(data, ctx.clock)
    # an earlier restart healed (SIGKILL), then the supervisor itself died: status still live
    _session(ctx, state="running", child_pid=9, restarts=1, last_cause="killed by SIGKILL")
    assert revive.revive(data, str(ctx.paths.config), ctx.env, Boot()) is not None
    assert starts == [data]
    st = gather_status(ctx.paths, ctx.env, ctx.clock)
    pulse = st["pulse"]
    assert pulse["restarting"] and pulse["revived"] and pulse["restarts"] == 2
    assert "supervisor (pid 77) died" in str(pulse["last_cause"])
    rec = _wanted(ctx)
    assert rec["restarts"] == 2 and "supervisor (pid 77) died" in str(rec["cause"])


def test_nothing_is_revived_without_up_after_down_or_while_anyone_runs_it(
    ctx: Ctx, starts: list[str]
) -> None:
    data, config, clock = str(ctx.paths.data), str(ctx.paths.config), Boot()
    sdir = _session(ctx, state="running", child_pid=9)
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    assert revive.revive(data, config, ctx.env, clock) is None  # never `up`
    revive.want(data, ctx.clock)
    with _held(ctx.paths.lock_file):  # a pulse holds the beat
        assert revive.revive(data, config, ctx.env, clock) is None
    with _held(sdir / "lock"):  # its supervisor lives (waiting out a restart delay)
        assert revive.revive(data, config, ctx.env, clock) is None
    _session(ctx, state="exited", exit_code=3)  # it left a home that was replaced
    assert revive.revive(data, config, ctx.env, clock) is None
    revive.unwant(data)  # `down`
    _session(ctx, state="running", child_pid=9)
    assert revive.revive(data, config, ctx.env, clock) is None
    assert starts == []


def test_revivals_back_off_doubling_on_boottime_and_start_small_after_a_healthy_spell(
    ctx: Ctx, starts: list[str]
) -> None:
    data, config, clock = str(ctx.paths.data), str(ctx.paths.config), Boot()
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    revive.want(data, ctx.clock)
    _session(ctx, state="exited", exit_code=1, error="restart failed: cannot run `x`")
    tried = []
    for _ in range(40):  # one verb every 0.5 s for 20 s, the pulse lost all along
        cause = revive.revive(data, config, ctx.env, clock)
        assert cause is not None and "restart failed" in cause
        tried.append(len(starts))
        clock.boot += 0.5
    gaps = [i for i in range(1, 40) if tried[i] > tried[i - 1]]
    assert tried[0] == 1 and len(starts) == 5, tried  # at 0, 1, 3, 7 and 15 s: 1 s doubling
    assert [b - a for a, b in pairwise(gaps)] == [4, 8, 16]
    clock.boot += revive.STREAK_RESET_S  # long after: the next revival starts small again
    revive.revive(data, config, ctx.env, clock)
    assert _wanted(ctx)["streak"] == 1
    clock.boot = 3.0  # a reboot: CLOCK_BOOTTIME starts over; the old try is not in the future
    revive.revive(data, config, ctx.env, clock)
    assert len(starts) == 7


def test_a_revival_that_cannot_start_is_said_by_status(ctx: Ctx, starts: list[str]) -> None:
    import io
    import sys

    data = str(ctx.paths.data)
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    revive.want(data, ctx.clock)
    _session(ctx, state="running", child_pid=9)
    revive.revive(data, str(ctx.paths.config), ctx.env, Boot())
    revive.failed(data, "runner 'x' needs `nope`, which is not on PATH")
    st = gather_status(ctx.paths, ctx.env, ctx.clock)
    out, sys.stdout = sys.stdout, io.StringIO()
    try:
        print_status(st, False, False)
        text = sys.stdout.getvalue()
    finally:
        sys.stdout = out
    line = next(ln for ln in text.splitlines() if ln.startswith("pulse"))
    assert "restarting (its supervisor was lost; looop starts it again)" in line
    assert "could not start again: runner 'x' needs `nope`" in line


def test_a_pulse_an_up_is_starting_is_not_lost(ctx: Ctx, starts: list[str]) -> None:
    """`up` holds its lock until the pulse is ready: a host or web server that looks in that
    window (its own start, beside the pulse's) must not start a second `up --revive`."""
    data, config, clock = str(ctx.paths.data), str(ctx.paths.config), Boot()
    ctx.paths.lock_dir.mkdir(parents=True, exist_ok=True)
    revive.want(data, ctx.clock)
    with _held(ctx.paths.lock_dir / "up"):  # up (or a revival) is starting it
        assert revive.revive(data, config, ctx.env, clock) == "it was not running"
    assert starts == [] and "tried_boot" not in _wanted(ctx)  # no try, no backoff spent
    assert revive.pending(data) == "it was not running"  # up died before the pulse started
    assert revive.revive(data, config, ctx.env, clock) is not None and starts == [data]


def test_a_revival_runs_with_the_path_up_had_not_the_reviving_shells(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner `up` found on its PATH (an npm prefix, a venv) is found again when a verb
    run from a shell without it brings the pulse back."""
    envs: list[dict[str, str]] = []
    monkeypatch.setattr(revive, "_start", lambda data, config, env: envs.append(dict(env)))
    data = str(ctx.paths.data)
    revive.want(data, ctx.clock, path="/opt/agents/bin:/usr/bin")
    _session(ctx, state="running")  # its supervisor (pid 77) is gone: no lock held
    assert revive.revive(data, "cfg", {"PATH": "/usr/bin", "HOME": "/h"}, ctx.clock) is not None
    assert envs == [{"PATH": "/opt/agents/bin:/usr/bin", "HOME": "/h"}]
