"""Host code never trusts a path a worker's box could have made (issue 50, item 2): what the
beat and the verbs read or sweep in claims/, tells/, asks/, answers/, events.jsonl and
cost.jsonl follows no symlink, blocks on no FIFO, and costs a bound however much a box wrote."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.home.boxfolder import FOLDER_MAX
from looop.home.locks import folder_lock
from looop.human import mailbox
from looop.human.leases import LeaseError, reap_stale
from looop.human.tellbox import new_tell, sweep_consumed, take_tells
from looop.loop.housekeep import housekeep_sessions
from looop.sense.probes import probe_asks, probe_claims
from looop.views.beatlog import beat_records, paused_at
from looop.views.status import pending_asks
from tests.clocks import FixedClock

WEEK = 7 * 86400.0
NOW = 1_800_000_000.0


def _old(path: Path) -> None:
    os.utime(path, (NOW - 2 * WEEK, NOW - 2 * WEEK))


def _project(tmp_path: Path) -> Path:
    """A folder of the user's that a box points a symlink at: week-old `*.json` files."""
    proj = tmp_path / "project"
    proj.mkdir()
    for name in ("package.json", "w1-1.json", "w1-2.json"):
        (proj / name).write_text("{}")
        _old(proj / name)
    return proj


def test_a_symlinked_consumed_is_refused_and_its_target_survives_the_sweep(
    ctx: Ctx, tmp_path: Path
) -> None:
    proj = _project(tmp_path)
    tells = ctx.paths.tells
    tells.mkdir()
    (tells / "consumed").symlink_to(proj)
    knobs = ctx.knobs()
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.t = NOW
    for _ in range(3):  # three beats
        housekeep_sessions(ctx, knobs)
    assert sorted(p.name for p in proj.iterdir()) == ["package.json", "w1-1.json", "w1-2.json"]
    said = [f["msg"] for name, f in ctx.events.seen if name == "box.refused"]
    assert len(said) == 1 and "consumed is a symlink" in said[0], ctx.events.seen
    with pytest.raises(store.NotRegular):
        sweep_consumed(tells, 0, NOW)


def test_a_symlink_inside_consumed_is_never_followed(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    done = tmp_path / "tells" / "consumed"
    done.mkdir(parents=True)
    (done / "w9-1.json").symlink_to(proj / "package.json")
    (done / "w9-2.json").symlink_to("/etc/passwd")
    sweep_consumed(tmp_path / "tells", 0, NOW)
    assert (proj / "package.json").read_text() == "{}"
    assert Path("/etc/passwd").exists()


def test_told_never_moves_a_tell_into_a_symlinked_consumed(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    tells = tmp_path / "tells"
    new_tell(tells, "w1", "hello", NOW)
    (tells / "consumed").symlink_to(proj)
    before = (proj / "w1-1.json").read_text()
    with pytest.raises(store.NotRegular, match="symlink"):
        take_tells(tells, "w1")
    assert (proj / "w1-1.json").read_text() == before  # not replaced by the tell
    assert (tells / "w1-1.json").exists()


def test_an_ask_is_never_archived_into_a_symlinked_archive(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    rec = mailbox.new_ask(asks, answers, "w1", "go?", None, [], NOW)
    (asks / "archive").symlink_to(proj)
    with pytest.raises(mailbox.AskError, match="symlink"):
        mailbox.archive(asks, rec["id"])
    assert (proj / "w1-1.json").read_text() == "{}"


def test_a_symlinked_claims_folder_is_refused_by_reaping(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    (tmp_path / "claims").symlink_to(proj)
    with pytest.raises(LeaseError, match="symlink"):
        reap_stale(tmp_path / "claims", lambda sid: False)
    assert sorted(p.name for p in proj.iterdir()) == ["package.json", "w1-1.json", "w1-2.json"]


def test_records_that_are_symlinks_or_fifos_read_as_unreadable(ctx: Ctx) -> None:
    claims, asks = ctx.paths.claims, ctx.paths.asks
    claims.mkdir()
    asks.mkdir()
    (claims / "passwd.json").symlink_to("/etc/passwd")
    os.mkfifo(claims / "pipe.json")  # a plain open() would block the beat for ever
    (asks / "w1-1.json").symlink_to("/etc/passwd")
    os.mkfifo(asks / "w1-2.json")
    assert probe_claims(ctx)["signal"] == []  # neither is a regular file: not a claim
    assert probe_asks(ctx)["signal"] == []
    assert pending_asks(str(ctx.paths.data)) == []


def test_a_held_folder_lock_is_waited_for_a_bound_then_not(tmp_path: Path) -> None:
    shared = tmp_path / "claims" / ".lock"
    shared.parent.mkdir()
    shared.touch()
    box = os.open(shared, os.O_RDWR)
    fcntl.flock(box, fcntl.LOCK_EX)  # a box holds it (another open file: another holder)
    pauses: list[float] = []
    try:
        with folder_lock(tmp_path / ".lock" / "claims", shared, pause=pauses.append) as lock:
            assert lock.ignored is not None and "held too long" in lock.ignored
    finally:
        os.close(box)
    assert 0 < len(pauses) < 100 and sum(pauses) < 2.0
    with folder_lock(tmp_path / ".lock" / "claims", shared, pause=pauses.append) as lock:
        assert lock.ignored is None  # released: taken at once


def test_a_fifo_or_symlink_for_the_folder_lock_is_not_used(tmp_path: Path) -> None:
    claims = tmp_path / "claims"
    claims.mkdir()
    os.mkfifo(claims / ".lock")
    with folder_lock(tmp_path / ".lock" / "claims", claims / ".lock") as lock:
        assert lock.ignored is not None
    (claims / ".lock").unlink()
    (claims / ".lock").symlink_to("/etc/passwd")
    with folder_lock(tmp_path / ".lock" / "claims", claims / ".lock") as lock:
        assert lock.ignored is not None
    assert (tmp_path / ".lock" / "claims").is_file()


def _one_long_line(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(b'{"event":"tick_start","ts":"2026-01-01T00:00:00Z"}\n')
        block = b"x" * (1 << 20)
        for _ in range(size >> 20):
            f.write(block)
        f.write(b'\n{"event":"decided","action":"noop","ts":"2026-01-01T00:00:01Z"}\n')


def test_a_50_mb_line_in_events_costs_status_a_bounded_read(ctx: Ctx) -> None:
    events = ctx.paths.events
    _one_long_line(events, 50 << 20)
    started = time.monotonic()
    records = beat_records(str(ctx.paths.data))
    paused_at(str(events))
    tail = store.tail_lines(events, 400, 8192)
    took = time.monotonic() - started
    assert took < 1.0, f"{took:.2f}s"
    assert [r["event"] for r in records] == ["decided"]
    assert tail[-2:] == [store.LONG_LINE_NOTE, tail[-1]] and '"decided"' in tail[-1]


def test_a_long_line_among_short_ones_is_skipped_with_a_note(tmp_path: Path) -> None:
    p = tmp_path / "j"
    p.write_bytes(b"a\n" + b"y" * (store.LINE_MAX + 5) + b"\nb\nc\n")
    assert store.tail_lines(p, 10) == ["a", store.LONG_LINE_NOTE, "b", "c"]
    assert store.tail_lines(p, 2) == ["b", "c"]


def test_a_ledger_with_an_endless_line_is_read_to_a_bound(tmp_path: Path) -> None:
    ledger = tmp_path / "cost.jsonl"
    row = '{"kind":"tick","ts":"2026-01-01T00:00:02Z","usd":1}\n'
    with ledger.open("wb") as f:
        f.write(b"z" * (40 << 20) + b"\n")
        f.write(row.encode())
    started = time.process_time()  # CPU, not wall: a loaded machine waits, it does not work
    text = store.read_since(ledger, "2026-01-01T00:00:00Z")
    assert time.process_time() - started < 1.0
    assert text is not None and text.strip() == row.strip()


def test_a_follower_never_grows_on_a_line_with_no_end(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    p.write_bytes(b"")
    f = store.Follower(p)
    with p.open("ab") as out:
        for _ in range(4):
            out.write(b"q" * store.LINE_MAX)
            out.flush()
            assert f.lines() == []
            assert len(f.partial) <= store.LINE_MAX + 1
        out.write(b"\nok\n")
    assert f.lines() == [store.LONG_LINE_NOTE, "ok"]


def test_events_or_ledger_as_fifo_or_symlink_never_block_or_leak(ctx: Ctx) -> None:
    events = ctx.paths.events
    os.mkfifo(events)
    assert paused_at(str(events)) is False  # no hang
    assert beat_records(str(ctx.paths.data)) == []
    events.unlink()
    events.symlink_to("/etc/passwd")
    assert beat_records(str(ctx.paths.data)) == []  # not read through the link
    ctx.events.record("tick_start")  # never written through it either
    assert "tick_start" not in Path("/etc/passwd").read_text()


def _fill(folder: Path, n: int, body: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # hard links (a new file every 50k): 100k files in a second
        if i % 50_000 == 0:
            first = folder / f"a-{i}.json"
            first.write_text(json.dumps(body))
        else:
            os.link(first, folder / f"a-{i}.json")


def test_100k_claims_and_asks_cost_the_beat_a_bound(ctx: Ctx) -> None:
    n = 100_000
    _fill(ctx.paths.claims, n, {"v": 1, "name": "x", "session": "w1", "ts": 1})
    _fill(ctx.paths.asks, n, {"v": 1, "id": "a", "worker": "w1", "prompt": "?", "ts": 1})
    started = time.monotonic()
    claims, asks = probe_claims(ctx), probe_asks(ctx)
    took = time.monotonic() - started
    assert took < 2.0, f"{took:.2f}s"
    assert len(claims["signal"]) <= FOLDER_MAX and len(asks["signal"]) <= FOLDER_MAX
    assert f"more than {FOLDER_MAX}" in claims["detail"]["note"]
    assert f"more than {FOLDER_MAX}" in asks["detail"]["note"]
    said = [f["msg"] for name, f in ctx.events.seen if name == "box.refused"]
    probe_claims(ctx)
    assert [f["msg"] for name, f in ctx.events.seen if name == "box.refused"] == said  # once
    assert len(said) == 2
