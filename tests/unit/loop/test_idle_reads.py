"""An idle home's beat asks every worker whether it runs (the disk bound, the corpse sweep, the
pulse's cadence): that answer comes from its status and lock, as list_sessions' `alive` says,
without parsing its meta.json (issue 56: an idle home burns no more than supervisord)."""

from __future__ import annotations

import builtins
import fcntl
import io
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home import sessionfiles, store
from looop.home.sessionfiles import any_live, flag_note, live_ids
from looop.home.store import write_json
from looop.loop import tick
from looop.loop.world import WorldMemo
from looop.sense import probes
from looop.sessions.state import list_sessions, prune_aged
from looop.views import outcomes, workerrows


def _session(data: Path, sid: str, meta: Any, st: Any) -> Path:
    sdir = data / "sessions" / sid
    sdir.mkdir(parents=True)
    if isinstance(meta, str):
        (sdir / "meta.json").write_text(meta)
    elif meta is not None:
        write_json(sdir / "meta.json", meta)
    if st is not None:
        write_json(sdir / "status.json", st)
    return sdir


def _meta(sid: str) -> dict[str, Any]:
    return {"v": 1, "id": sid, "cmd": ["true"], "started_at": "2026-01-01T00:00:00.000Z"}


@pytest.fixture
def held() -> Iterator[list[int]]:
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def _hold(sdir: Path, fds: list[int]) -> None:
    fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a live supervisor holds
    fds.append(fd)


def _fleet(data: Path, fds: list[int], live: int) -> None:
    for i in range(live):
        _hold(_session(data, f"w{i}", _meta(f"w{i}"), {"state": "running"}), fds)


def test_the_live_ids_are_list_sessions_alive_ones(tmp_path: Path, held: list[int]) -> None:
    data = tmp_path / "data"
    for sid in ("live", "starting", "pulse"):
        _hold(_session(data, sid, _meta(sid), {"state": "running"}), held)
    _hold(_session(data, "nostatus", _meta("nostatus"), None), held)
    _hold(_session(data, "nometa", None, {"state": "running"}), held)
    _hold(_session(data, "over", _meta("over"), {"state": "exited", "exit_code": 0}), held)
    _session(data, "dead", _meta("dead"), {"state": "running"})  # no supervisor holds it
    _session(data, "done", _meta("done"), {"state": "killed"})
    (data / "sessions" / "bad id").mkdir()
    want = sorted(s.id for s in list_sessions(data) if s.alive and s.id != "pulse")
    assert want == ["live", "nostatus", "starting"]
    assert live_ids(str(data), but="pulse") == want
    assert any_live(str(data), but="pulse")
    assert live_ids(str(tmp_path / "nowhere")) == []
    assert not any_live(str(tmp_path / "nowhere"))


def test_only_the_pulse_running_is_no_live_worker(tmp_path: Path, held: list[int]) -> None:
    data = tmp_path / "data"
    _hold(_session(data, "pulse", _meta("pulse"), {"state": "running"}), held)
    _session(data, "dead", _meta("dead"), {"state": "running"})
    assert not any_live(str(data), but="pulse")
    assert any_live(str(data))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    seen: dict[str, int] = {}
    real = store.read_json_object

    def counted(path: Any) -> dict[str, Any] | None:
        sdir, name = os.path.split(str(path))
        key = f"{os.path.basename(sdir)}/{name}" if name == "meta.json" else name
        seen[key] = seen.get(key, 0) + 1
        return real(path)

    monkeypatch.setattr(store, "read_json_object", counted)
    return seen


def test_a_beats_disk_and_corpse_checks_parse_no_running_workers_meta(
    tmp_path: Path, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _fleet(data, held, 5)
    _session(data, "gone", _meta("gone"), {"state": "exited", "exit_code": 0})
    seen = _count_reads(monkeypatch)
    assert live_ids(str(data), but="pulse") == [f"w{i}" for i in range(5)]  # the disk bound's
    assert prune_aged(data, 0, 0.0) == ["gone"]  # the finished one still goes
    assert [k for k in seen if k.endswith("meta.json")] == ["gone/meta.json"]
    assert not (data / "sessions" / "gone").exists()
    assert sorted(os.listdir(data / "sessions")) == [f"w{i}" for i in range(5)]


def test_the_cadence_asks_until_the_first_live_worker(
    tmp_path: Path, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _fleet(data, held, 30)
    seen = _count_reads(monkeypatch)
    assert any_live(str(data), but="pulse")
    assert seen == {"status.json": 1}
    monkeypatch.setattr(sessionfiles, "lock_held", lambda sdir: False)  # every one gone
    assert not any_live(str(data), but="pulse")


def test_a_beat_reads_each_workers_status_once(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68: settling, pruning, kept worktrees, the disk bound, the usage windows, the
    outcomes and the sessions probe share the beat's one listing: one read a worker a beat."""
    data = ctx.paths.data
    _fleet(data, held, 3)
    for i in range(3):  # finished workers kept, their outcomes recorded by the first beat
        done = _session(data, f"d{i}", _meta(f"d{i}"), {"state": "exited", "exit_code": 0})
        (done / "ended").touch()
    (data / "resume").mkdir()  # a home that started workers: the meter and the usage windows
    (data / "worktrees").mkdir()  # … in worktrees: the kept ones' expiry
    monkeypatch.setattr(tick, "_gate_unchanged", lambda b: b.stop("skip"))  # no runner called
    assert tick.tick(ctx).status == "skip"
    reads: Counter[str] = Counter()
    real = store.read_json_object

    def counted(path: Any) -> dict[str, Any] | None:
        sdir, name = os.path.split(str(path))
        if name == "status.json":
            reads[os.path.basename(sdir)] += 1
        return real(path)

    monkeypatch.setattr(store, "read_json_object", counted)
    out = tick.tick(ctx)
    assert out.status == "skip"
    assert out.world is not None  # the sessions probe saw every worker, from that listing
    listed = json.loads(out.world.items["snap:sys-sessions"])
    assert [r["id"] for r in listed] == ["d0", "d1", "d2", "w0", "w1", "w2"]
    assert reads == {sid: 1 for sid in ("d0", "d1", "d2", "w0", "w1", "w2")}


def _count_opens(monkeypatch: pytest.MonkeyPatch, *marks: str) -> list[str]:
    """Every file opened or folder listed whose path holds one of `marks`."""
    got: list[str] = []

    def counting(real: Any) -> Any:
        def call(path: Any, *args: Any, **kw: Any) -> Any:
            name = "" if isinstance(path, int) else os.fsdecode(path)  # an fd: no name
            if any(m in name for m in marks):
                got.append(name)
            return real(path, *args, **kw)

        return call

    for mod, name in ((os, "open"), (io, "open"), (builtins, "open"), (os, "listdir")):
        monkeypatch.setattr(mod, name, counting(getattr(mod, name)))
    monkeypatch.setattr(os, "scandir", counting(os.scandir))
    return got


def test_a_pulse_beat_opens_no_file_of_a_worker_that_ended_beats_ago(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68.6: every finished worker kept cost each beat a read of its meta, status,
    note, log marks, outcome and verify records. Once its end is recorded and nothing of it
    changes, the pulse's beat knows it by a stat and opens none of its files."""
    data = ctx.paths.data
    _fleet(data, held, 2)
    done = [f"d{i}" for i in range(4)]
    for sid in done:
        st = {"state": "exited", "exit_code": 0, "last_change": "2026-01-01T00:01:00.000Z"}
        (_session(data, sid, _meta(sid), st) / "ended").touch()
    (data / "resume").mkdir()  # a home that started workers: the meter and the usage windows
    monkeypatch.setattr(tick, "_gate_unchanged", lambda b: b.stop("skip"))  # no runner called
    memo = WorldMemo()
    assert tick.tick(ctx, memo=memo).status == "skip"  # their ends recorded
    assert all(outcomes.read_record(str(data), sid) for sid in done)
    past = time.time() - 60  # long enough ago that a change since would show in a stamp
    for path in [data / "outcomes", *(data / "sessions" / sid for sid in done)]:
        os.utime(path, (past, past))
    assert tick.tick(ctx, memo=memo).status == "skip"  # read once more, as they stand now
    opened = _count_opens(monkeypatch, *(f"/{sid}" for sid in done))
    out = tick.tick(ctx, memo=memo)
    assert out.status == "skip", out.error
    assert opened == []
    assert out.world is not None  # the sessions probe still shows each, and how it ended
    listed = json.loads(out.world.items["snap:sys-sessions"])
    assert [(r["id"], r.get("outcome")) for r in listed] == [
        *((sid, "exited") for sid in done),
        ("w0", None),
        ("w1", None),
    ]
    flag_note(str(data), "d2", "look here")  # a change: read again
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert {os.path.basename(os.path.dirname(p)) for p in opened} >= {"d2"}
    assert not [p for p in opened if "/d0" in p or "/d1" in p or "/d3" in p]


def _settled(ctx: Ctx, held: list[int], live: int, monkeypatch: pytest.MonkeyPatch) -> WorldMemo:
    """`live` workers and three finished ones (d0-d2) whose ends the pulse recorded beats ago,
    its files' stamps past: the pulse's memory after two skip beats."""
    data = ctx.paths.data
    _fleet(data, held, live)
    done = [f"d{i}" for i in range(3)]
    for sid in done:
        st = {"state": "exited", "exit_code": 0, "last_change": "2026-01-01T00:01:00.000Z"}
        (_session(data, sid, _meta(sid), st) / "ended").touch()
    (data / "resume").mkdir()  # a home that started workers
    monkeypatch.setattr(tick, "_gate_unchanged", lambda b: b.stop("skip"))  # no runner called
    memo = WorldMemo()
    assert tick.tick(ctx, memo=memo).status == "skip"  # their ends recorded
    past = time.time() - 60  # long enough ago that a change since would show in a stamp
    for path in [data / "outcomes", data / "sessions", *(data / "sessions" / sid for sid in done)]:
        os.utime(path, (past, past))
    assert tick.tick(ctx, memo=memo).status == "skip"  # read once more, as they stand now
    return memo


def test_a_pulse_beat_stats_no_folder_of_a_worker_that_ended_beats_ago(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68.6: each beat stat'ed every finished worker's folder and listed the sessions
    twice, ~3 µs a kept worker. While the sessions folder stays, the beat passes them all at
    its one stat; a flag on one is seen the beat after."""
    data, memo = ctx.paths.data, _settled(ctx, held, 1, monkeypatch)
    seen: list[str] = []
    for name in ("stat", "lstat", "listdir", "scandir"):
        real = getattr(os, name)

        def call(path: Any, *a: Any, _real: Any = real, _how: str = f" {name}", **kw: Any) -> Any:
            seen.append(("" if isinstance(path, int) else os.fsdecode(path)) + _how)
            return _real(path, *a, **kw)

        monkeypatch.setattr(os, name, call)
    assert tick.tick(ctx, memo=memo).status == "skip"
    sessions = str(data / "sessions")
    assert [p for p in seen if p.startswith(sessions + "/d")] == []
    assert f"{sessions} listdir" not in seen  # its stamp only
    flag_note(str(data), "d1", "look here")
    seen.clear()
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert {p for p in seen if p.startswith(sessions + "/d")} >= {f"{sessions}/d1 stat"}


def test_a_pulse_beat_builds_no_row_for_a_worker_that_ended_beats_ago(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68.6: each beat rebuilt every finished worker's sys-sessions row (its health,
    its stamps). While nothing of it changes, the pulse's beat shows the row it built before,
    the reading byte for byte the same; a tell queued for one since shows in its row."""
    data, memo = ctx.paths.data, _settled(ctx, held, 2, monkeypatch)
    before = (data / "snapshots" / "sys-sessions.json").read_bytes()
    built: list[str] = []
    real = workerrows.health

    def counted(sid: str, *args: Any) -> str:
        built.append(sid)
        return real(sid, *args)

    monkeypatch.setattr(workerrows, "health", counted)
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert built == ["w0", "w1"]  # the live ones only
    assert (data / "snapshots" / "sys-sessions.json").read_bytes() == before
    (data / "tells").mkdir(exist_ok=True)
    write_json(data / "tells" / "d1-1.json", {"to": "d1", "text": "hi"})  # a change: built again
    built.clear()
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert sorted(built) == ["d1", "w0", "w1"]
    shown = json.loads((data / "snapshots" / "sys-sessions.json").read_bytes())
    assert shown["detail"]["workers"]["d1"]["pending_tells"] == 1
    assert shown["detail"]["workers"]["d0"]["pending_tells"] == 0


def test_a_pulse_beat_makes_no_entry_twice_yet_sees_a_finished_worker_change(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68.6: each beat made every finished worker's sys-sessions entries anew. While
    its row stays, the pulse's beat shows the entries it made before; a verify written for
    one, one started again under its id, one removed all show on the very next beat."""
    data, memo = ctx.paths.data, _settled(ctx, held, 1, monkeypatch)
    made: list[str] = []
    real = probes._signal_entry

    def counted(r: dict[str, Any]) -> dict[str, Any]:
        made.append(r["id"])
        return real(r)

    monkeypatch.setattr(probes, "_signal_entry", counted)
    before = (data / "snapshots" / "sys-sessions.json").read_bytes()
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert made == ["w0"]  # the live one only
    assert (data / "snapshots" / "sys-sessions.json").read_bytes() == before
    (data / "verify").mkdir(exist_ok=True)
    write_json(data / "verify" / "d0.json", {"pass": True, "output": "ok"})
    run = {"state": "running", "last_change": "2026-01-02T00:00:00.000Z"}
    again = _meta("d1") | {"started_at": run["last_change"]}
    write_json(data / "sessions" / "d1" / "meta.json", again)
    write_json(data / "sessions" / "d1" / "status.json", run)
    (data / "sessions" / "d1" / "ended").unlink()
    _hold(data / "sessions" / "d1", held)  # d1 runs again: its supervisor holds the lock
    for name in os.listdir(data / "sessions" / "d2"):
        os.unlink(data / "sessions" / "d2" / name)
    os.rmdir(data / "sessions" / "d2")
    out = tick.tick(ctx, memo=memo)
    assert out.status == "skip", out.error
    shown = json.loads((data / "snapshots" / "sys-sessions.json").read_bytes())
    sig = {e["id"]: e for e in shown["signal"]}
    assert sorted(sig) == ["d0", "d1", "w0"]
    assert sig["d0"]["verify"] == "pass"
    assert shown["detail"]["workers"]["d0"]["verify_output"] == "ok"
    assert (sig["d1"]["state"], sig["d1"]["health"]) == ("running", "busy")
    assert shown["detail"]["workers"]["d1"]["started_at"] == run["last_change"]


def test_a_pulse_beat_checks_no_kept_workers_outcome_twice_yet_sees_one_go(
    ctx: Ctx, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 68.6: each beat asked of every finished worker kept whether its outcome was
    recorded. While the outcome records stay, the beat asks none of them; one whose record
    went (a human removed it) gets its outcome again on the very next beat."""
    data, memo = ctx.paths.data, _settled(ctx, held, 1, monkeypatch)
    asked: list[str] = []
    real = outcomes.outcome_of

    def counted(rec: Any, gen: str) -> Any:
        asked.append(rec.get("id") if isinstance(rec, dict) else None)
        return real(rec, gen)

    monkeypatch.setattr(outcomes, "outcome_of", counted)
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert [a for a in asked if a in ("d0", "d1", "d2")] == []
    (data / "outcomes" / "d1.json").unlink()
    assert tick.tick(ctx, memo=memo).status == "skip"
    assert json.loads((data / "outcomes" / "d1.json").read_text())["outcome"] is not None
