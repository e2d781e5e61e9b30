"""A worker on an SSH host is judged quiet (`stuck`, IDLE) on that host's own monotonic clock
(issue 51): its satellite reads its supervisor's log/output.last there and answers how long
the worker has been quiet, an age; the home takes that age from its own now. The host's wall
clock is never set against the home's: a step of either, or a skew between them, neither
makes a worker stuck nor hides one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home import lastoutput
from looop.remote import hosts as reg
from looop.remote.fleet import remote_rows
from looop.remote.ssh import link
from looop.remote.ssh.satellite import worker_row
from looop.sessions.state import Session
from looop.views.fleet import fleet_rows_at
from tests.unit.workers.test_stuck_clock import StepClock

STUCK = 900


def _far_session(root: Path) -> Session:
    """A live worker in a satellite's data dir, its log and its supervisor's mark there."""
    sdir = root / "sessions" / "w1"
    (sdir / "log").mkdir(parents=True)
    (sdir / "log" / "output.log").write_bytes(b"hello\n")
    return Session(
        "w1", ["agent"], "running", True, None, False, "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z", None, 42, 80, 24, 6, str(sdir), "running",
    )  # fmt: skip


def _printed(s: Session, clock: StepClock) -> None:
    lastoutput.write_mark(os.path.join(s.dir, "log"), clock.mono, clock.boot)
    os.utime(os.path.join(s.dir, "log", "output.log"), (clock.wall, clock.wall))


@pytest.mark.parametrize("step", [3600.0, -3600.0])
def test_the_satellite_says_how_long_a_worker_is_quiet_on_its_hosts_monotonic_clock(
    tmp_path: Path, step: float
) -> None:
    host = StepClock()
    s = _far_session(tmp_path)
    _printed(s, host)
    host.run(60)
    host.wall += step  # the host's clock stepped: NTP, `date -s`, a restored VM
    row = worker_row(tmp_path, s, host)
    assert row["quiet_s"] == pytest.approx(60.0)
    json.dumps(row, allow_nan=False)  # the answer is JSON as the home reads it


def _home_asks(ctx: Ctx, monkeypatch: pytest.MonkeyPatch, row: dict[str, Any]) -> dict[str, Any]:
    """`looop ls` at home, the host answering `ls` with `row` (through the real link code)."""
    data = ctx.paths.data
    if not reg.record_file(data, "w1").exists():
        reg.add(data, "h1", "ssh://u@h1.example", 1)
        reg.write_record(data, "w1", "h1", started_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(link, "_answers", lambda _path: True)  # the master is up
    body = json.dumps({"workers": [row]}).encode()
    monkeypatch.setattr(
        link.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 0, body, b"")
    )
    rows = fleet_rows_at(str(data), ctx.clock, STUCK, True, dict(ctx.env), far=remote_rows)
    [got] = [r for r in rows if r["id"] == "w1"]
    return got


def test_the_home_judges_a_far_worker_by_the_hosts_age_never_by_its_wall_clock(
    tmp_path: Path, ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = StepClock()
    s = _far_session(tmp_path / "far")
    _printed(s, host)
    host.run(60)
    host.wall -= 7 * 86400  # the host's wall clock a week behind the home's
    got = _home_asks(ctx, monkeypatch, worker_row(tmp_path / "far", s, host))
    assert got["health"] == "busy" and got["idle_s"] == pytest.approx(60.0), got
    assert got["last_output_unix"] == pytest.approx(ctx.clock.now() - 60.0)
    host.run(STUCK)  # quiet past the bound on the host's own clock
    host.wall += 14 * 86400  # … and now a week ahead: it says nothing of the quiet
    got = _home_asks(ctx, monkeypatch, worker_row(tmp_path / "far", s, host))
    assert got["health"] == "stuck" and got["idle_s"] == pytest.approx(60.0 + STUCK), got


@pytest.mark.parametrize("value", [1e308, -1, "NaN", 10**200, "soon", True, 1e10])
def test_a_crafted_quiet_reads_as_unknown_and_judges_no_one_stuck(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    row = {"id": "w1", "alive": True, "state": "running", "quiet_s": value}
    got = _home_asks(ctx, monkeypatch, row)
    assert got["health"] == "busy" and got["idle_s"] is None, got


def test_a_far_worker_waiting_on_an_ask_reads_so(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from looop.human.mailbox import new_ask

    new_ask(ctx.paths.asks, ctx.paths.answers, "w1", "ship?", None, [], ctx.clock.now())
    got = _home_asks(ctx, monkeypatch, {"id": "w1", "alive": True, "quiet_s": 2.0 * STUCK})
    assert got["health"] == "waiting-ask", got


def test_a_far_worker_judged_stuck_never_shows_an_idle_below_its_quiet(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host takes its time to answer: IDLE is read from a now after its answer, the
    same quiet that judged the worker stuck."""
    from tests.clocks import FixedClock

    assert isinstance(ctx.clock, FixedClock)
    clock = ctx.clock
    data = ctx.paths.data
    reg.add(data, "h1", "ssh://u@h1.example", 1)
    reg.write_record(data, "w1", "h1", started_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(link, "_answers", lambda _path: True)
    body = json.dumps({"workers": [{"id": "w1", "alive": True, "quiet_s": STUCK + 1.0}]})

    def slow_host(argv: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        clock.advance(5.0)  # the round trip to the host
        return subprocess.CompletedProcess(argv, 0, body.encode(), b"")

    monkeypatch.setattr(link.subprocess, "run", slow_host)
    rows = fleet_rows_at(str(data), clock, STUCK, True, dict(ctx.env), far=remote_rows)
    [got] = [r for r in rows if r["id"] == "w1"]
    assert got["health"] == "stuck" and got["idle_s"] >= STUCK + 1.0, got
