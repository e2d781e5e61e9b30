"""The light fleet readers (`looop ls` on its click-free path) against the full ones."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.clock import SystemClock, offset_stamp
from looop.home.store import write_json
from looop.human.mailbox import pending
from looop.views.fleet import fleet_json, fleet_rows_at
from looop.views.workerrows import waiting_workers
from tests.clocks import FixedClock


@pytest.fixture
def asks(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "asks", tmp_path / "answers"
    a.mkdir()
    b.mkdir()
    return a, b


def _want(asks: Path, answers: Path) -> set[str]:
    return {str(r["worker"]) for r in pending(asks, answers) if isinstance(r.get("worker"), str)}


def test_waiting_workers_are_the_pending_asks_askers(asks: tuple[Path, Path]) -> None:
    a, b = asks
    write_json(a / "a1.json", {"id": "a1", "worker": "w1", "prompt": "?"})
    write_json(a / "a2.json", {"id": "a2", "worker": "w2", "prompt": "?"})
    write_json(b / "a2.json", {"id": "a2", "answer": "yes"})  # answered: not waiting
    write_json(a / "a3.json", {"id": "a3", "worker": 7})
    write_json(a / ".hidden.json", {"id": "h", "worker": "w4"})
    write_json(a / "a5.json.tmp.1.abc", {"id": "t", "worker": "w5"})
    write_json(a / "a6.json", {})
    (a / "a7.json").write_text("{torn")  # unreadable: asks as `?`
    (a / "notes.txt").write_text("w6")
    got = waiting_workers(str(a), str(b))
    assert got == _want(a, b)
    assert got == {"w1", "?"}  # .hidden.json is no ask: no ask id begins with '.'


def test_no_asks_dir_means_nobody_waits(tmp_path: Path) -> None:
    assert waiting_workers(str(tmp_path / "no"), str(tmp_path / "x")) == set()
    (tmp_path / "file").write_text("")
    assert waiting_workers(str(tmp_path / "file"), str(tmp_path / "x")) == set()


@pytest.fixture
def zones() -> Iterator[None]:
    old = os.environ.get("TZ")
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    "zone", ["UTC", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "Africa/Monrovia"]
)
def test_the_offset_stamp_without_datetime_is_datetimes(zones: None, zone: str) -> None:
    os.environ["TZ"] = zone
    time.tzset()
    clock = SystemClock()
    for ts in (-2e9, 0.0, 1e9, 1_782_000_000.9999996, 1_800_000_000.5):
        assert clock.offset_stamp_at(ts) == offset_stamp(clock.local(ts))


def test_ls_json_is_json_dumps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = data / "sessions" / "w1"
    sdir.mkdir(parents=True)
    write_json(sdir / "meta.json", {"id": "w1", "cmd": ["x"], "started_at": "2026-01-01T00:00Z"})
    write_json(sdir / "status.json", {"state": "exited", "exit_code": 0})
    (sdir / "output.log").write_text("\x1b[31mhi é\n")
    write_json(data / "verify" / "w1.json", {"pass": True, "output": "ok \u2028 é"})
    rows = fleet_rows_at(str(data), FixedClock(1_800_000_000.0), 600, True)
    assert [r["id"] for r in rows] == ["pulse", "w1"]
    assert rows[1]["up_s"] is not None and rows[1]["verify"] == "pass"
    assert fleet_json(rows) == json.dumps(rows, indent=2, sort_keys=True, default=str)
