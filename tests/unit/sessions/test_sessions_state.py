"""Session files without processes: ids, socket paths, liveness by flock, listing, cleanup."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.home import sessionfiles
from looop.home.sessionfiles import flag_note, socket_file
from looop.home.store import write_json
from looop.sessions import state
from looop.sessions.state import (
    SessionError,
    get_session,
    list_sessions,
    prune_aged,
    reap,
    validate_id,
    wait_code,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "data"
    r.mkdir()
    return r


def _make(
    root: Path,
    sid: str,
    st: str | None,
    *,
    exit_code: int | None = None,
    last_change: str = "2026-01-01T00:00:00.000Z",
    supervisor_pid: int = 999_999_999,
    **extra: Any,
) -> Path:
    sdir = root / "sessions" / sid
    sdir.mkdir(parents=True)
    write_json(
        sdir / "meta.json",
        {
            "v": 1,
            "id": sid,
            "cmd": ["sh", "-c", "true"],
            "supervisor_pid": supervisor_pid,
            "pid_start": 1,
            "started_at": "2026-01-01T00:00:00.000Z",
            "cwd": str(root),
        },
    )
    if st is not None:
        write_json(
            sdir / "status.json",
            {
                "v": 1,
                "state": st,
                "child_pid": None,
                "exit_code": exit_code,
                "signaled": False,
                "last_change": last_change,
                "cols": 80,
                "rows": 24,
                "error": None,
                **extra,
            },
        )
    (sdir / "lock").touch()
    return sdir


@pytest.fixture
def held() -> Iterator[list[int]]:
    """fds holding session locks (as a live supervisor would); released at teardown."""
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def _hold(sdir: Path, fds: list[int]) -> None:
    fd = os.open(sdir / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fds.append(fd)


@pytest.mark.parametrize("sid", ["a", "worker-1", "x.y_z", "A" * 64])
def test_valid_ids(sid: str) -> None:
    assert validate_id(sid) == sid


@pytest.mark.parametrize("sid", ["", ".", "..", "a/b", "a b", "A" * 65, "é"])
def test_invalid_ids_are_refused_with_a_hint(sid: str) -> None:
    with pytest.raises(SessionError, match="invalid session id"):
        validate_id(sid)


def test_socket_path_is_short_private_and_distinct(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / ("e" * 90)
    p1 = Path(socket_file(deep, "x" * 64))
    assert len(str(p1).encode()) < state.SUN_PATH_MAX
    assert Path(socket_file(deep, "a")) != Path(socket_file(deep, "b"))
    assert Path(socket_file(deep, "a")) != Path(socket_file(tmp_path, "a"))
    assert Path(socket_file(deep, "a")).parent == Path(socket_file(deep, "b")).parent


def test_socket_dirs_are_0700_and_symlinks_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "r1"
    path = Path(sessionfiles.ensure_socket_file(root, "s"))
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert os.stat(path.parent.parent).st_mode & 0o777 == 0o700
    os.rmdir(path.parent)
    os.symlink(tmp_path, path.parent)
    try:
        with pytest.raises(SessionError, match="not a directory"):
            Path(sessionfiles.ensure_socket_file(root, "s"))
    finally:
        os.unlink(path.parent)


def test_running_without_a_held_lock_reads_dead_even_if_the_pid_lives(root: Path) -> None:
    # Our own pid is certainly alive: a pid check would call this session alive (PID reuse).
    _make(root, "ghost", "running", supervisor_pid=os.getpid())
    s = get_session(root, "ghost")
    assert (s.alive, s.label, s.dead) == (False, "dead", True)
    assert wait_code(s) == 137


def test_a_held_lock_means_alive(root: Path, held: list[int]) -> None:
    sdir = _make(root, "live", "running")
    _hold(sdir, held)
    s = get_session(root, "live")
    assert (s.alive, s.label) == (True, "running")
    assert wait_code(s) is None


def test_starting_without_status_and_lock_is_dead(root: Path) -> None:
    _make(root, "early", None)
    s = get_session(root, "early")
    assert (s.state, s.label, s.alive) == ("starting", "dead", False)


@pytest.mark.parametrize(
    ("st", "code", "label", "wait"),
    [
        ("exited", 3, "exit:3", 3),
        ("exited", 0, "exit:0", 0),
        ("exited", None, "exited", 0),
        ("killed", None, "killed", 130),
        ("killed", 9, "killed", 9),
    ],
)
def test_labels_and_wait_codes(
    root: Path, st: str, code: int | None, label: str, wait: int
) -> None:
    _make(root, "s", st, exit_code=code)
    s = get_session(root, "s")
    assert (s.label, wait_code(s), s.alive) == (label, wait, False)


def test_missing_session_error_names_it(root: Path) -> None:
    with pytest.raises(SessionError, match="no worker or session `nope` — `looop ls` lists them"):
        get_session(root, "nope")


def test_a_typoed_worker_id_is_told_the_near_one(root: Path) -> None:
    _make(root, "fix-login", "exited", exit_code=0)
    with pytest.raises(SessionError, match="`fix-logn` — did you mean `fix-login`\\? `looop ls`"):
        get_session(root, "fix-logn")


def test_listing_is_newest_first_and_skips_unreadable_dirs(root: Path) -> None:
    _make(root, "old", "exited", exit_code=0, last_change="2026-01-01T00:00:00.000Z")
    _make(root, "new", "exited", exit_code=0, last_change="2026-03-01T00:00:00.000Z")
    _make(root, "mid", "killed", last_change="2026-02-01T00:00:00.000Z")
    bad = root / "sessions" / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    (root / "sessions" / "bare").mkdir()  # a flag written before any session existed
    assert [s.id for s in list_sessions(root)] == ["new", "mid", "old"]
    assert list_sessions(root / "elsewhere") == []


def test_flag_and_unflag_work_on_dead_sessions(root: Path) -> None:
    _make(root, "done", "exited", exit_code=1)
    flag_note(str(root), "done", "look at the failing test")
    assert get_session(root, "done").note == "look at the failing test"
    flag_note(str(root), "done", None)
    flag_note(str(root), "done", None)  # already gone: fine
    assert get_session(root, "done").note is None
    flag_note(
        str(root), "later", ""
    )  # no session yet: the dir is created, an empty note still flags
    assert (root / "sessions" / "later" / "note").read_text() == ""


def _age(sdir: Path, now: float, seconds: float) -> None:
    os.utime(sdir, (now - seconds, now - seconds))


def test_prune_removes_only_aged_corpses(root: Path, held: list[int]) -> None:
    now = 1_900_000_000.0
    for sid, st in [("old-exit", "exited"), ("old-kill", "killed"), ("young", "exited")]:
        _make(root, sid, st, exit_code=0 if st == "exited" else None)
    crashed = _make(root, "crashed", "running")  # lock free: a corpse
    live = _make(root, "live", "running")
    _hold(live, held)
    bad = root / "sessions" / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("garbage")
    for sid in ("old-exit", "old-kill", "crashed", "live", "bad"):
        _age(root / "sessions" / sid, now, 10 * 86400)
    _age(root / "sessions" / "young", now, 60)
    removed = prune_aged(root, 3 * 86400, now)
    assert sorted(removed) == ["crashed", "old-exit", "old-kill"]
    assert not crashed.exists()
    assert live.exists() and bad.exists() and (root / "sessions" / "young").exists()
    # ttl 0: every corpse goes, still never the live one or the unreadable one.
    assert prune_aged(root, 0, now) == ["young"]
    assert sorted(os.listdir(root / "sessions")) == ["bad", "live"]


def test_prune_keeps_a_stopped_pulses_log(root: Path) -> None:
    """A stopped pulse's log is the only record of why it stopped: never pruned."""
    now = 1_900_000_000.0
    pulse = _make(root, "pulse", "exited", exit_code=1)
    (pulse / "output.log").write_text("pulse: the disk is full\n")
    _make(root, "w1", "exited", exit_code=0)
    for sid in ("pulse", "w1"):
        _age(root / "sessions" / sid, now, 10 * 86400)
    assert prune_aged(root, 3 * 86400, now) == ["w1"]
    assert prune_aged(root, 0, now) == []
    assert (pulse / "output.log").read_text() == "pulse: the disk is full\n"
    assert prune_aged(root, 0, now, keep=frozenset()) == ["pulse"]  # only when asked


def test_reap_removes_one_corpse_and_refuses_live_ones(root: Path, held: list[int]) -> None:
    _make(root, "a", "exited", exit_code=0)
    _make(root, "b", "exited", exit_code=0)
    live = _make(root, "c", "running")
    _hold(live, held)
    assert reap(root, "a") is True
    assert not (root / "sessions" / "a").exists()
    assert (root / "sessions" / "b").exists()
    assert reap(root, "c") is False
    assert live.exists()
    assert reap(root, "nothing") is False


def test_status_reads_are_never_torn(root: Path, held: list[int]) -> None:
    sdir = _make(root, "busy", "running")
    _hold(sdir, held)
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            write_json(
                sdir / state.STATUS,
                {
                    "v": 1,
                    "state": "running",
                    "child_pid": n,
                    "exit_code": None,
                    "signaled": False,
                    "last_change": "2026-01-01T00:00:00.000Z",
                    "cols": 80 + n % 50,
                    "rows": 24,
                    "error": "x" * (n % 3000),
                },
            )

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(300):
            s = get_session(root, "busy")
            assert s.state == "running" and s.alive
            raw = (sdir / "status.json").read_bytes()
            assert json.loads(raw)["state"] == "running"
    finally:
        stop.set()
        t.join()


# -- disk readers on a finished session (no supervisor needed) --------------------------------


def test_log_tail_reads_lines_from_the_end(root: Path) -> None:
    from looop.sessions.logs import log_tail

    sdir = _make(root, "t", "exited", exit_code=0)
    lines = [f"\x1b[32mline {i}\x1b[0m" for i in range(5000)]
    (sdir / "output.log").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    assert log_tail(root, "t", 2) == "line 4998\nline 4999"
    assert log_tail(root, "t", 1, raw=True) == "\x1b[32mline 4999\x1b[0m"
    assert log_tail(root, "t", 3, grep=r"line 12\d\d$") == "line 1297\nline 1298\nline 1299"
    assert log_tail(root, "t", None).split("\n")[:2] == ["line 0", "line 1"]
    assert log_tail(root, "t", 10**6).count("\n") == 4999


def test_log_tail_of_one_endless_line_stays_bounded(root: Path) -> None:
    from looop.sessions.logs import MAX_TAIL_LINE, log_tail

    sdir = _make(root, "spin", "killed")
    (sdir / "output.log").write_bytes(b"start\n" + b"\r|\r/\r-\r\\" * 600_000 + b"\rlast")
    out = log_tail(root, "spin", 1)
    assert len(out) <= MAX_TAIL_LINE
    assert out.endswith("last")


def test_read_log_of_a_finished_session_flushes_an_unfinished_tail(root: Path) -> None:
    from looop.sessions.logs import read_log

    sdir = _make(root, "f", "exited", exit_code=0)
    (sdir / "output.log").write_bytes(b"done \xe2\x82")
    text, offset = read_log(root, "f", 0, raw=True)
    assert (text, offset) == ("done \ufffd", len("done ") + 2)
    assert read_log(root, "f", offset) == ("", offset)
    with pytest.raises(SessionError, match="invalid offset"):
        read_log(root, "f", -1)


def test_expect_on_a_finished_log(root: Path) -> None:
    from looop.sessions.client import expect
    from tests.clocks import FixedClock

    sdir = _make(root, "e", "exited", exit_code=0)
    (sdir / "output.log").write_bytes(b"\x1b[1mbuild\x1b[0m ok: 42 tests\r\n")
    clock = FixedClock()
    code, matched, offset = expect(root, "e", r"ok: \d+", clock=clock)
    assert (code, matched, offset) == (0, "ok: 42", len((sdir / "output.log").read_bytes()))
    assert expect(root, "e", "FAILED", clock=clock)[0] == 1
    assert expect(root, "e", "ok", from_now=True, clock=clock)[0] == 1
    with pytest.raises(SessionError, match="invalid pattern"):
        expect(root, "e", "(", clock=clock)


# -- supervisor argv and frames -----------------------------------------------------------------


def test_supervisor_argv_skips_unknown_flags_with_their_values() -> None:
    from looop.sessions.supervisor import Args

    a = Args(
        [
            "--id",
            "w1",
            "--root",
            "/data",
            "--view-cmd",
            "jq .",  # an unknown flag: its value must not leak into the command
            "--no-tty",
            "--size",
            "120x40",
            "--timeout-ms",
            "1500",
            "--idle-timeout-ms=250",
            "--ready-fd",
            "5",
            "--",
            "claude",
            "--print",
        ]
    )
    assert (a.sid, a.root, a.cols, a.rows, a.ready_fd) == ("w1", "/data", 120, 40, 5)
    assert (a.timeout_s, a.idle_timeout_s) == (1.5, 0.25)
    assert a.cmd == ["claude", "--print"]
    b = Args(["--id", "x", "--root", "/r", "--size", "0x9", "--timeout-ms", "0", "--", "sh"])
    assert (b.cols, b.rows, b.timeout_s) == (80, 24, None)  # bad size ignored, 0 = no timeout


def test_frames_round_trip() -> None:
    from looop.sessions import protocol as proto

    head = proto.frame(proto.OUTPUT, b"abc")
    assert proto.HEADER.unpack(head[:5]) == (proto.OUTPUT, 3) and head[5:] == b"abc"
    assert proto.parse_exit(proto.exit_frame(True, None)[5:]) == (True, 130)
    assert proto.parse_exit(proto.exit_frame(False, None)[5:]) == (False, 0)
    assert proto.parse_exit(proto.exit_frame(False, -2)[5:]) == (False, -2)
    assert proto.parse_size(proto.resize_frame(132, 50)[5:]) == (132, 50)


def test_a_session_that_ends_between_the_reads_is_read_as_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status says running, then the supervisor writes its end and lets go of the lock
    before the lock is probed: the reader must report the end, not a dead supervisor."""
    from looop.home import sessionfiles
    from looop.sessions import state

    sdir = tmp_path / "sessions" / "quick"
    sdir.mkdir(parents=True)
    write_json(sdir / "meta.json", {"v": 1, "id": "quick", "cmd": ["true"], "started_at": "t"})
    write_json(sdir / "status.json", {"v": 1, "state": "running", "exit_code": None})

    def ends_meanwhile(_sdir: object) -> bool:
        write_json(sdir / "status.json", {"v": 1, "state": "exited", "exit_code": 0})
        return False  # and the lock is free

    for module in (state, sessionfiles):
        monkeypatch.setattr(module, "lock_held", ends_meanwhile)
    s = state.load_session(sdir)
    assert s is not None and (s.state, s.exit_code, s.dead) == ("exited", 0, False)
    write_json(sdir / "status.json", {"v": 1, "state": "running", "exit_code": None})
    light = sessionfiles.load_light(str(sdir))
    assert light is not None and (light["state"], light["exit_code"]) == ("exited", 0)


@pytest.mark.process
@pytest.mark.timeout(30)
def test_a_finished_sessions_folder_is_cleared_only_once_its_supervisor_lets_go(root: Path) -> None:
    """The supervisor writes `ended` after the final status and exits (its lock goes) just
    after: a reuse in that window waited for nothing, and its rmtree met the late file
    ("Directory not empty") or a reused id's new run got the old `ended`."""
    sdir = _make(root, "again", "exited", exit_code=0)
    fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the finishing supervisor still holds it
    done: list[bool] = []
    clearing = threading.Thread(target=lambda: done.append(state.reuse(root, "again")))
    clearing.start()
    try:
        clearing.join(0.3)
        assert clearing.is_alive(), "cleared while its supervisor was still writing"
        (sdir / "ended").touch()  # its last write …
    finally:
        os.close(fd)  # … then it exits
    clearing.join(10)
    assert done == [True]
    assert not (sdir / "ended").exists()


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """path -> how many times a JSON state file was read there (store.read_json_object)."""
    reads: dict[str, int] = {}
    real = sessionfiles.store.read_json_object

    def counted(path: Any) -> Any:
        reads[str(path)] = reads.get(str(path), 0) + 1
        return real(path)

    monkeypatch.setattr(sessionfiles.store, "read_json_object", counted)
    return reads


def test_ls_reads_each_live_workers_status_once(
    root: Path, held: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ls` and `status` list the live workers (list_light): at fleet size each file read
    counts, a worker's status.json once and a finished one's never (its `ended` mark)."""
    for i in range(3):
        _hold(_make(root, f"w{i}", "running"), held)
    for i in range(2):
        (_make(root, f"d{i}", "exited", exit_code=0) / "ended").touch()
    reads = _count_reads(monkeypatch)
    got = sessionfiles.list_light(str(root), live_only=True)
    assert sorted(s["id"] for s in got) == ["w0", "w1", "w2"]
    assert all(s["alive"] and s["state"] == "running" for s in got)
    status = {p: n for p, n in reads.items() if p.endswith("status.json")}
    assert status == {str(root / "sessions" / f"w{i}" / "status.json"): 1 for i in range(3)}


def test_a_beat_passes_kept_finished_workers_at_a_stat(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every beat settles the dead (from its one listing) and prunes the aged: a finished
    worker kept within its time has none of its files read again, so keeping many costs a beat
    next to nothing beyond the listing."""
    now = 1_900_000_000.0
    for i in range(3):
        sdir = _make(root, f"d{i}", "exited", exit_code=0)
        (sdir / "ended").touch()
        _age(sdir, now, 60)
    listed = state.list_sessions(root)  # the beat's one listing, taken before
    reads = _count_reads(monkeypatch)
    assert state.settle_dead(listed, "2026-01-01T00:00:00.000Z") == []
    assert prune_aged(root, 3 * 86400, now) == []
    assert reads == {}
    assert sorted(os.listdir(root / "sessions")) == ["d0", "d1", "d2"]


def test_a_kept_worker_is_pruned_on_the_beat_it_comes_of_age(root: Path) -> None:
    """The pulse passes its kept finished workers by their oldest stamp while none is of age:
    the beat the oldest comes of age it goes (and only it), with ttl 0 every one goes."""
    now = time.time()  # a folder is remembered only once it stayed as it is (store.settled)
    for sid, old in (("d0", 100), ("d1", 50), ("d2", 10)):
        sdir = _make(root, sid, "exited", exit_code=0)
        (sdir / "ended").touch()
        _age(sdir, now, old)
    kept = state.Kept()
    state.list_sessions(root, kept)
    assert sorted(kept) == ["d0", "d1", "d2"]
    assert prune_aged(root, 120, now, kept=kept) == []
    assert prune_aged(root, 120, now + 30, kept=kept) == ["d0"]  # 130 s old now
    state.list_sessions(root, kept)
    assert sorted(kept) == ["d1", "d2"]
    assert prune_aged(root, 120, now + 31, kept=kept) == []
    assert prune_aged(root, 0, now + 31, kept=kept) == ["d1", "d2"]
