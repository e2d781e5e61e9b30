"""What an idle home's beat reads of its workers (issue 56: an idle home burns no more than
supervisord): one listing of its sessions a beat, shared by the usage windows and the sessions
probe; a worker's output tail read for a usage limit only when that output moved since a beat
last read it without one."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home import logfiles, sessionfiles
from looop.home.store import write_json
from looop.loop import windowwork
from looop.loop.tick import tick
from looop.loop.world import WorldMemo
from looop.sessions import state
from looop.sessions.state import Session
from looop.views import outcomes
from looop.workers import needsinput
from tests.helpers import wire

pytestmark = pytest.mark.timeout(60)

NOOP = {"decision": {"action": "noop", "reason": "idle"}}
WORKERS = 6


@pytest.fixture
def held() -> Iterator[list[int]]:
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def _worker(ctx: Ctx, sid: str, fds: list[int]) -> Path:
    """A running worker as its supervisor leaves it on disk, its lock held as one holds it."""
    sdir = ctx.paths.sessions / sid
    sdir.mkdir(parents=True)
    meta = {"v": 1, "id": sid, "cmd": ["sleep", "1"], "started_at": "2026-01-01T00:00:00.000Z"}
    write_json(sdir / "meta.json", meta)
    write_json(sdir / "status.json", {"state": "running"})
    fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    fds.append(fd)
    os.makedirs(logfiles.files_dir(sdir), exist_ok=True)
    with open(os.path.join(logfiles.files_dir(sdir), logfiles.LOG), "ab") as f:
        f.write(b"working on it\n")
    return sdir


def _home(ctx: Ctx, fds: list[int], monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """An idle home: its workers running, their start decided on (the next beats skip). No
    supervisor answers here: a screen reads as a CLI at work."""
    monkeypatch.setattr(needsinput.Looker, "screen", lambda self, data, wid: "working on it")
    wire(ctx, [NOOP] * 5)
    assert tick(ctx).status == "decided"  # seeded
    (ctx.paths.data / "resume").mkdir(exist_ok=True)  # a home that has started workers
    dirs = [_worker(ctx, f"w{i}", fds) for i in range(WORKERS)]
    assert tick(ctx).status == "decided"  # the workers' world seen
    return dirs


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each worker's session is read whole (meta, status, lock, note, log size)."""
    seen: dict[str, int] = {}
    real = state.load_session

    def counted(sdir: str) -> Session | None:
        name = os.path.basename(sdir)
        seen[name] = seen.get(name, 0) + 1
        return real(sdir)

    monkeypatch.setattr(state, "load_session", counted)
    return seen


def _count_tails(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []

    def tail(sdir: str, limit: int) -> bytes:
        read.append(os.path.basename(sdir))
        return logfiles.tail(sdir, limit)

    monkeypatch.setattr(windowwork, "logfiles", SimpleNamespace(tail=tail))
    return read


def test_a_beat_lists_its_workers_once_and_its_reading_says_each_runs(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(ctx, held, monkeypatch)
    seen = _count_loads(monkeypatch)
    assert tick(ctx, memo=WorldMemo()).status == "skip"
    assert seen == {f"w{i}": 1 for i in range(WORKERS)}
    reading = json.loads((ctx.paths.snapshots / "sys-sessions.json").read_text())
    assert sorted(w["id"] for w in reading["signal"]) == [f"w{i}" for i in range(WORKERS)]
    assert {w["state"] for w in reading["signal"]} == {"running"}
    assert all(w["uptime_s"] is not None for w in reading["detail"]["workers"].values())


def test_a_workers_output_is_read_for_a_limit_only_when_it_moved(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = _home(ctx, held, monkeypatch)
    read = _count_tails(monkeypatch)
    memo = WorldMemo()
    assert tick(ctx, memo=memo).status == "skip"
    assert sorted(read) == [f"w{i}" for i in range(WORKERS)]  # the pulse's first beat: all
    read.clear()
    assert tick(ctx, memo=memo).status == "skip"
    assert read == []  # nothing printed since
    with open(os.path.join(logfiles.files_dir(dirs[2]), logfiles.LOG), "ab") as f:
        f.write(b"one more line\n")
    tick(ctx, memo=memo)
    assert read == ["w2"]
    read.clear()
    tick(ctx)  # a beat without the pulse's memory (`looop tick`) reads every one
    assert sorted(read) == [f"w{i}" for i in range(WORKERS)]


def test_a_workers_end_is_recorded_from_the_beats_one_listing(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = _home(ctx, held, monkeypatch)
    whole: list[str] = []
    real = sessionfiles.load_light

    def counted(sdir: str, seen: dict[str, Any] | None = None) -> dict[str, Any] | None:
        whole.append(os.path.basename(sdir))
        return real(sdir, seen)

    monkeypatch.setattr(sessionfiles, "load_light", counted)
    seen = _count_loads(monkeypatch)
    memo = WorldMemo()
    assert tick(ctx, memo=memo).status == "skip"
    os.close(held.pop(3))  # w3's supervisor wrote its end and let go of its lock
    write_json(dirs[3] / "status.json", {"state": "exited", "exit_code": 0})
    seen.clear()
    tick(ctx, memo=memo)
    assert set(whole) == {"w3"}  # its last line, for its outcome: the running ones passed over
    assert seen == {f"w{i}": 1 for i in range(WORKERS)}  # how it ended: the beat's one listing
    assert outcomes.read_record(str(ctx.paths.data), "w3") is not None
