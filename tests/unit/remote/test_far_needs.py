"""A worker on an SSH host at its CLI's approval prompt or idle input box joins the needs-you
queue as one here does: its satellite judges its screen there (remote/ssh/satellite.py, read
only when its log changed) and says so in `ls`; the home makes the row needs-input, the
host's words one plain line."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.remote.ssh.satellite import screen_waits, worker_row
from looop.views.needs import needs_at
from looop.workers import needsinput as looking
from tests.unit.remote.test_far_quiet import _far_session, _home_asks
from tests.unit.workers.test_stuck_clock import StepClock

APPROVAL = "Bash command\n\n Do you want to proceed?\n ❯ 1. Yes\n   2. No\n"


def test_the_satellite_judges_a_screen_once_per_change_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _far_session(tmp_path)
    reads: list[str] = []

    def screen(data: str, sid: str) -> str:
        reads.append(sid)
        return APPROVAL

    monkeypatch.setattr(looking, "_screen", screen)
    clock = StepClock()
    waits = screen_waits(tmp_path, [s], clock)
    assert waits == {"w1": "approval: Do you want to proceed?"}
    row = worker_row(tmp_path, s, clock, waits.get("w1"))
    assert row["needs_input"] == "approval: Do you want to proceed?"
    assert screen_waits(tmp_path, [s], clock) == waits and reads == ["w1"]  # kept, not re-read
    monkeypatch.setattr(looking, "_screen", lambda data, sid: "working… (esc to interrupt)")
    Path(s.dir, "log", "output.log").write_bytes(b"hello\nmore output\n")
    assert screen_waits(tmp_path, [s], clock) == {}  # answered: busy again


def test_a_far_worker_at_its_approval_prompt_is_in_the_queue_with_its_host(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = _far_session(tmp_path / "far")
    clock = StepClock()
    hostile = "approval: \x1b]0;pwned\x07Do you want to\nproceed?"
    row = _home_asks(ctx, monkeypatch, worker_row(tmp_path / "far", s, clock, hostile))
    assert row["health"] == "needs-input" and row["host"] == "h1"
    assert row["needs_input"] == "approval: ]0;pwned Do you want to proceed?"
    (need,) = needs_at(str(ctx.paths.data), [row])
    assert (need.kind, need.worker, need.host, need.answer) == (
        "approval", "w1", "h1", "looop attach w1"
    )  # fmt: skip
    quiet = _home_asks(ctx, monkeypatch, worker_row(tmp_path / "far", s, clock, None))
    assert quiet["health"] == "busy" and quiet["needs_input"] is None
    odd = _home_asks(ctx, monkeypatch, {**worker_row(tmp_path / "far", s, clock), "needs_input": 7})
    assert odd["health"] == "busy"  # not words: no verdict
