"""Rotation in one room: the pump's cap (through the writer thread and on the loop), the
files' shift, and a reader that meets a rotation half done."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home import logfiles
from looop.sessions import evloop as ev
from looop.sessions import pump as pump_mod
from looop.sessions.pump import Pump
from looop.sessions.supervisor import Args

pytestmark = pytest.mark.timeout(30)
CAP = 64 * 1024


@pytest.fixture
def loop() -> Iterator[ev.Loop]:
    lp = ev.Loop()
    yield lp
    lp.close()


def _pump(loop: ev.Loop, sdir: Path, files: int = 3) -> Pump:
    fdir = logfiles.prepare(sdir)
    return Pump(loop, logfiles.open_log(fdir), 80, 24, lambda: 0.0, fdir, CAP, files)


def _stream(n: int) -> bytes:
    return b"".join(b"%08d\n" % i for i in range(n))


def _kept(sdir: Path) -> tuple[bytes, int]:
    """This run's bytes as the files hold them (oldest first) and how many files."""
    names = sorted(
        (p for p in (sdir / "log").iterdir() if p.name.startswith("output.log")),
        key=lambda p: -int(p.name.rpartition(".")[2]) if p.name[-1].isdigit() else 0,
    )
    for p in names:
        assert p.stat().st_size <= CAP, p.name
    return b"".join(p.read_bytes() for p in names), len(names)


@pytest.mark.parametrize("batch", [1000, pump_mod.LOG_THREAD_MIN, 200_000])
def test_the_pump_keeps_the_cap_and_every_byte_it_keeps_is_in_order(
    loop: ev.Loop, tmp_path: Path, batch: int
) -> None:
    """Small batches (written on the loop), burst-sized ones (the writer thread) and one
    bigger than a whole file (split across rotations)."""
    data = _stream(150_000)  # 1.35 MB
    p = _pump(loop, tmp_path)
    for i in range(0, len(data), batch):
        p.ingest(data[i : i + batch])
    p.close_log()
    kept, files = _kept(tmp_path)
    assert files == 3 and 2 * CAP < len(kept) <= 3 * CAP
    assert data.endswith(kept)
    assert p.log_size == len(data) and p.log_error is None
    with logfiles.open_view(tmp_path) as view:  # the readers' view: the same bytes
        assert (view.start, view.end) == (len(data) - len(kept), len(data))
        assert view.read(view.start, len(kept) + 10) == kept


def test_a_reused_ids_earlier_files_are_shifted_out_first(loop: ev.Loop, tmp_path: Path) -> None:
    fdir = logfiles.prepare(tmp_path)
    for n, text in ((2, b"oldest run\n"), (1, b"last run\n")):
        (Path(fdir) / logfiles.numbered(n)).write_bytes(text)
    (Path(fdir) / "output.log.9").write_bytes(b"left by a bigger cap\n")
    p = Pump(loop, logfiles.open_log(fdir), 80, 24, lambda: 0.0, fdir, CAP, 3)
    p.ingest(b"x" * (CAP + 10))  # one rotation
    p.close_log()
    names = sorted(os.listdir(fdir))
    # output.last: when the run last printed (home/lastoutput.py), beside output.pos, and
    # output.times: when its output came (`log --since`)
    assert names == [
        "output.last",
        "output.log",
        "output.log.1",
        "output.log.2",
        "output.pos",
        "output.times",
    ]
    assert (Path(fdir) / "output.log.2").read_bytes() == b"last run\n"
    with logfiles.open_view(tmp_path) as view:  # this run only: not the run before
        assert (view.start, view.end) == (0, CAP + 10)


@pytest.mark.process  # the reader waits out a half-done rotation on the real clock
def test_a_reader_never_takes_a_half_done_rotation_for_the_log(tmp_path: Path) -> None:
    """output.log renamed, its successor not yet made: the reader waits for the new
    output.pos instead of reading the old file's bytes at the wrong offsets."""
    fdir = Path(logfiles.prepare(tmp_path))
    (fdir / "output.log").write_bytes(b"a" * 100)
    logfiles.write_pos(str(fdir), [((fdir / "output.log").stat().st_ino, 0)])
    os.rename(fdir / "output.log", fdir / "output.log.1")
    (fdir / "output.log").write_bytes(b"b" * 7)  # made, output.pos not yet rewritten

    def finish() -> None:
        time.sleep(0.05)
        pos = [
            ((fdir / "output.log").stat().st_ino, 100),
            ((fdir / "output.log.1").stat().st_ino, 0),
        ]
        logfiles.write_pos(str(fdir), pos)

    t = threading.Thread(target=finish)
    t.start()
    try:
        with logfiles.open_view(tmp_path) as view:
            assert (view.start, view.end) == (0, 107)
            assert view.read(95, 10) == b"a" * 5 + b"b" * 5
    finally:
        t.join()


def test_the_supervisor_takes_the_cap_from_its_flags_with_a_floor() -> None:
    a = Args(["--log-max-bytes", "100", "--log-max-files", "1", "--", "sh"])
    assert (a.log_max, a.log_files) == (logfiles.MIN_BYTES, logfiles.MIN_FILES)
    a = Args(["--log-max-bytes", "1048576", "--log-max-files", "9", "--", "sh"])
    assert (a.log_max, a.log_files) == (1 << 20, 9)
    a = Args(["--", "sh"])
    assert (a.log_max, a.log_files) == (logfiles.MAX_BYTES, logfiles.MAX_FILES)
