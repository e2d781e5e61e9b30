"""A worker cannot fill the disk: real sessions printing far past their log cap, and every
reader (tail, grep, read from an offset, follow, a dead session's screenshot) across the
rotation."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.logfiles import read_pos
from looop.sessions.client import follow, screenshot, wait
from looop.sessions.logs import log_tail, read_log
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from looop.workers.backend import LocalBackend
from tests.clocks import FixedClock
from tests.helpers import kill_sessions, wait_until

pytestmark = pytest.mark.timeout(60)

CAP = (64 * 1024, 3)
LINE = 13  # b"line 000000\r\n": the PTY turns each newline into CR LF


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "data"
    r.mkdir()
    yield r
    kill_sessions(r)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def _printer(n: int, every: int = 0, pause: float = 0.0) -> list[str]:
    """Prints `line 000000` … in order; with `every`, pauses `pause` s after that many."""
    code = (
        "import sys, time\n"
        f"for i in range({n}):\n"
        "    sys.stdout.write(f'line {i:06d}\\n')\n"
        f"    if {every} and i % {every or 1} == 0:\n"
        "        sys.stdout.flush()\n"
        f"        time.sleep({pause})\n"
        "sys.stdout.flush()\n"
        "time.sleep(0.2)\n"
    )
    return [sys.executable, "-c", code]


def _on_disk(sdir: Path) -> dict[str, int]:
    """The log files (in `log/`; the `output.log` beside it is a symlink into it)."""
    assert (sdir / "output.log").is_symlink()
    files = (sdir / "log").iterdir()
    return {p.name: p.stat().st_size for p in files if p.name.startswith("output.log")}


def _numbers(text: str) -> list[int]:
    """The numbered lines in `text`; a line still being written (cut short) is not one."""
    lines = text.replace("\r", "").split("\n")
    return [int(ln[5:]) for ln in lines if ln.startswith("line ") and len(ln) >= 11]


def test_a_worker_printing_far_past_the_cap_leaves_at_most_the_cap(
    root: Path, env: dict[str, str]
) -> None:
    n = 200_000  # 2.6 MB through the PTY, forty times the cap
    spawn(root, "flood", _printer(n), cwd=root, env=env, log_cap=CAP)
    assert wait(root, "flood", 40, FixedClock()) == 0
    sdir = root / "sessions" / "flood"
    files = _on_disk(sdir)
    assert len(files) <= CAP[1] and sum(files.values()) <= CAP[0] * CAP[1], files
    assert all(size <= CAP[0] for size in files.values())
    # Offsets stay logical: the session counts every byte it wrote, kept or not.
    assert get_session(root, "flood").output_bytes == n * LINE
    # The tail reads back across the files, in order, up to the very last line.
    last = _numbers(log_tail(root, "flood", 6000))
    assert last == list(range(n - 6000, n))  # 78 KB: more than output.log alone holds
    found = _numbers(log_tail(root, "flood", 3, grep=r"line 19999[0-9]$"))
    assert found == [199997, 199998, 199999]
    assert log_tail(root, "flood", 5, grep="line 000001") == ""  # rotated away, not invented
    # A read from 0 starts at the oldest byte kept and reads on across files to the end.
    got: list[int] = []
    text, off = read_log(root, "flood", 0)
    while text:
        got += _numbers(text)
        text, off = read_log(root, "flood", off)
    assert off == n * LINE
    assert got == list(range(got[0], n)) and got[0] > 0
    # A dead session's screenshot is its log replayed: the last lines, whatever file.
    shot = screenshot(root, "flood")["text"]
    assert f"line {n - 1:06d}" in shot and f"line {n - 2:06d}" in shot


def test_log_follow_across_rotations_loses_and_repeats_nothing(
    root: Path, env: dict[str, str]
) -> None:
    n = 40_000  # 520 KB at about 400 KB/s: a rotation every ~0.15 s under the follower
    spawn(root, "tail", _printer(n, every=1000, pause=0.03), cwd=root, env=env, log_cap=CAP)
    seen: list[str] = []
    code = follow(root, "tail", 0, False, seen.append, FixedClock())
    assert code == 0
    assert _numbers("".join(seen)) == list(range(n))
    assert len(read_pos(root / "sessions" / "tail" / "log") or []) >= 2  # it did rotate meanwhile


def test_a_reused_ids_earlier_logs_count_in_the_cap(root: Path, env: dict[str, str]) -> None:
    sdir = root / "sessions" / "again"
    for n in range(1, 4):
        spawn(root, "again", ["/bin/sh", "-c", f"echo run-{n}"], cwd=root, env=env, log_cap=CAP)
        assert wait(root, "again", 20, FixedClock()) == 0
    assert sorted(_on_disk(sdir)) == ["output.log", "output.log.1", "output.log.2"]
    spawn(root, "again", _printer(20_000), cwd=root, env=env, log_cap=CAP)
    assert wait(root, "again", 30, FixedClock()) == 0
    files = _on_disk(sdir)
    assert len(files) <= CAP[1] and sum(files.values()) <= CAP[0] * CAP[1]
    kept = b"".join((sdir / "log" / name).read_bytes() for name in files)
    assert b"run-" not in kept  # the earlier runs went first
    assert _numbers(log_tail(root, "again", 2)) == [19_998, 19_999]


def test_reading_during_a_flood_never_sees_the_wrong_bytes(root: Path, env: dict[str, str]) -> None:
    """Tails taken while rotations happen under them: always consecutive lines."""
    n = 150_000
    spawn(root, "busy", _printer(n, every=5000, pause=0.01), cwd=root, env=env, log_cap=CAP)
    done = threading.Event()
    bad: list[list[int]] = []

    def reader() -> None:
        while not done.is_set():
            got = _numbers(log_tail(root, "busy", 300))
            if got and got != list(range(got[0], got[0] + len(got))):
                bad.append(got)

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert wait(root, "busy", 40, FixedClock()) == 0
    finally:
        done.set()
        t.join(10)
    assert not bad, bad[0][:20]


def test_watch_feed_and_the_web_log_read_on_across_rotations(env: dict[str, str], ctx: Ctx) -> None:
    """watch's feed follows a session whose log rotates under it, byte for byte; the web's
    log view is the tail across the files."""
    root = ctx.paths.data
    try:
        _watch_and_web(root, env, ctx)
    finally:
        kill_sessions(root)


def _watch_and_web(root: Path, env: dict[str, str], ctx: Ctx) -> None:
    from looop.tui.feed import SessionFeed
    from looop.web import reads

    n = 30_300  # output.log ends holding the last 52 lines: the rest are in the older files
    spawn(root, "seen", _printer(n, every=1000, pause=0.03), cwd=root, env=env, log_cap=CAP)
    out = partial(LocalBackend(root, FixedClock()).output, "seen")  # as watch reads it
    feed = SessionFeed("seen", out, 40, 5, "t0", time.time)
    feed.open()
    fed = 0

    def look() -> bool:
        nonlocal fed
        over = not get_session(root, "seen").alive
        assert feed.poll() is not None  # never read as a log that was replaced
        before = len(feed.pending)
        feed.pump(5.0)
        fed += before - len(feed.pending)  # emulated
        return over and not feed.pending

    wait_until(look, 40, "the session's end")
    # Every byte once: emulated, or (a feed that fell behind under load) skipped and said.
    assert fed + feed.skipped == feed.offset == n * LINE
    assert len(read_pos(root / "sessions" / "seen" / "log") or []) >= 2
    rows = [feed.row(i) for i in range(len(feed.screen.history) + 5)]
    text = "\n".join(r if isinstance(r, str) else r.text if r else "" for r in rows)
    assert f"line {n - 1:06d}" in text
    web = reads.log(ctx, "seen", 2000)["text"]
    assert _numbers(web) == list(range(n - 2000, n))  # across output.log and .1


def test_a_pods_stdout_and_a_finished_attach_replay_read_across_rotations(
    root: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """`looop pod run` copies the log to the pod's stdout as it grows (kubectl logs reads
    that): a rotation must not stall it. A finished session's attach prints the transcript."""
    import io

    from looop.remote.kube import podrun
    from looop.sessions.attach import _Out, _replay_log

    n = 1_400_000  # 18 MB: past the default rotation size (16 MiB) the pod's session has
    out = io.BytesIO()
    code = podrun.run(
        root,
        "pod",
        _printer(n),
        cwd=root,
        env=env,
        size=(80, 24),
        out=out,
        stopping=lambda: False,
        pause=time.sleep,
    )
    assert code == 0
    assert _numbers(out.getvalue().decode()) == list(range(n))  # each byte once, no stall
    assert (root / "sessions" / "pod" / "log" / "output.log.1").exists()
    n = 20_000
    spawn(root, "done", _printer(n), cwd=root, env=env, log_cap=CAP)
    assert wait(root, "done", 30, FixedClock()) == 0
    moved = 0
    copied = io.BytesIO()
    while step := podrun._copy(root / "sessions" / "done", moved, copied):
        moved += step
    assert moved == n * LINE
    kept = _numbers(copied.getvalue().decode())
    assert kept == list(range(kept[0], n)) and kept[0] > 0  # rotated away, the rest in order
    with open(tmp_path / "replay", "wb") as f:
        _replay_log(get_session(root, "done"), _Out(f.fileno(), None))  # as --passthrough
    assert (tmp_path / "replay").read_bytes() == copied.getvalue()


def test_needs_input_sees_the_log_by_logical_size_across_rotations(
    root: Path, env: dict[str, str]
) -> None:
    """needs-input looks at a screen again only when the log changed: its key is the
    logical size, so a rotation that left output.log smaller never reads as 'no change'."""
    from looop.views import needsinput

    spawn(root, "ni", _printer(20_000), cwd=root, env=env, log_cap=CAP)
    assert wait(root, "ni", 30, FixedClock()) == 0
    sdir = str(root / "sessions" / "ni")
    key = needsinput._log_key(sdir)
    assert key is not None and key[0] == 20_000 * LINE
    assert (root / "sessions" / "ni" / "output.log").stat().st_size < key[0]
    assert not needsinput._repeated(sdir, {"k": [key[0] - 6000, 0]}, key)  # never repeats
    # A TUI redrawing the same 12 KB five times: the last two redraws straddle a rotation
    # (at 64 KiB), and are still seen to be the same bytes.
    redraw = "".join(f"r{i:05d}\n" for i in range(1500))  # 12000 bytes with CR LF
    code = f"import sys, time\nfor _ in range(6): sys.stdout.write({redraw!r})\n"
    code += "sys.stdout.flush()\ntime.sleep(0.2)\n"
    spawn(root, "tui", [sys.executable, "-c", code], cwd=root, env=env, log_cap=CAP)
    assert wait(root, "tui", 30, FixedClock()) == 0
    sdir = str(root / "sessions" / "tui")
    key = needsinput._log_key(sdir)
    assert key is not None and key[0] == 6 * 12000
    assert len(read_pos(root / "sessions" / "tui" / "log") or []) == 2  # it rotated
    assert needsinput._repeated(sdir, {"k": [key[0] - 12000, 0]}, key)
