"""The pump room on its own: `PtyReader` on the supervisor's loop over a real pipe (any
readable non-blocking fd behaves like a PTY master for it), the `Pump`'s burst detection and
its lazily made screen. The PTY itself is covered by tests/integration/test_pump_stream.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sessions import evloop as ev
from looop.sessions import pump as pump_mod
from looop.sessions.oscalls import READ_BATCH, READ_SIZE, PtyReader
from looop.sessions.outputnotes import RETRY_S
from looop.sessions.pump import Pump

pytestmark = pytest.mark.timeout(30)


def _payload(size: int) -> bytes:
    """Numbered records, so a lost, doubled or reordered chunk changes the bytes."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b"%09d|" % n
        n += 1
    return bytes(out[:size])


class Pipe:
    """A pipe whose read end is non-blocking, like a PTY master; each end closed once."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.r, False)
        self.open = {self.r, self.w}
        self.lock = threading.Lock()

    def close(self, fd: int) -> None:
        with self.lock:
            if fd in self.open:
                self.open.discard(fd)
                os.close(fd)

    def close_all(self) -> None:
        for fd in tuple(self.open):
            self.close(fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    yield p
    p.close_all()


@pytest.fixture
def loop() -> Iterator[ev.Loop]:
    lp = ev.Loop()
    yield lp
    lp.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:65536]) :]


class Sink:
    """What the loop received: the chunks in order and when `done` came."""

    def __init__(self, loop: ev.Loop) -> None:
        self.chunks: list[bytes] = []
        self.done_after: int | None = None  # chunks delivered before `done`
        self.done_calls = 0
        self.finished = loop.future()

    def deliver(self, data: bytes) -> None:
        self.chunks.append(data)

    def done(self) -> None:
        self.done_calls += 1
        self.done_after = len(self.chunks)
        if not self.finished.done():
            self.finished.set_result(None)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def test_a_5mb_stream_arrives_whole_in_order_and_done_comes_after_the_last_byte(
    pipe: Pipe, loop: ev.Loop
) -> None:
    payload = _payload(5 * 1024 * 1024)
    sink = Sink(loop)
    PtyReader(pipe.r, loop, sink.deliver, sink.done)
    writer = threading.Thread(target=lambda: (_write_all(pipe.w, payload), pipe.close(pipe.w)))
    writer.start()
    in_time = ev.within(loop, sink.finished, 20)
    loop.run_until(in_time)
    writer.join(5)
    assert in_time.result(), "the end never came"
    assert sink.data == payload
    assert sink.done_calls == 1
    assert sink.done_after == len(sink.chunks)  # nothing was delivered after the end
    # One piece per batch: never more than a batch of reads in one delivery.
    assert max(len(c) for c in sink.chunks) <= READ_BATCH * READ_SIZE


def test_nothing_is_read_while_the_loop_is_busy_so_the_writer_is_held_back(
    pipe: Pipe, loop: ev.Loop
) -> None:
    """No reader thread: while the loop does not turn, the pipe fills and the writer blocks;
    once it turns, everything flows."""
    os.set_blocking(pipe.w, False)
    payload = _payload(4 * 1024 * 1024)
    sink = Sink(loop)
    PtyReader(pipe.r, loop, sink.deliver, sink.done)
    sent = 0
    while sent < len(payload):
        try:
            sent += os.write(pipe.w, payload[sent : sent + 65536])
        except BlockingIOError:
            break
    assert 0 < sent < len(payload)  # the pipe is full: nobody took anything
    assert sink.chunks == []
    os.set_blocking(pipe.w, True)
    rest = payload[sent:]
    writer = threading.Thread(target=lambda: (_write_all(pipe.w, rest), pipe.close(pipe.w)))
    writer.start()
    timeout = ev.within(loop, sink.finished, 20)
    loop.run_until(timeout)
    writer.join(5)
    assert timeout.result() and sink.data == payload and sink.done_calls == 1


def test_stop_reads_no_more(pipe: Pipe, loop: ev.Loop) -> None:
    sink = Sink(loop)
    reader = PtyReader(pipe.r, loop, sink.deliver, sink.done)
    _write_all(pipe.w, b"before")
    loop.run_for(0.02)
    assert sink.data == b"before"
    assert reader.stop()
    _write_all(pipe.w, b"after")
    pipe.close(pipe.w)
    loop.run_for(0.02)
    assert sink.data == b"before" and sink.done_calls == 0


def test_a_trickle_is_delivered_on_the_next_turn(pipe: Pipe, loop: ev.Loop) -> None:
    """Keystroke echo waits for nothing: one turn of the loop takes it."""
    sink = Sink(loop)
    PtyReader(pipe.r, loop, sink.deliver, sink.done)
    for ch in (b"k", b"e", b"y"):
        _write_all(pipe.w, ch)
        loop.run_for(0.001)
        assert sink.chunks[-1] == ch


def test_a_burst_pauses_screen_feeding_even_when_output_log_cannot_be_written(
    loop: ev.Loop,
) -> None:
    """Burst detection counts what the pump took in, not the log (a failed log stops
    growing): the screen is fed once output calms down, never during the burst."""
    p = Pump(loop, -1, 80, 24, lambda: 0.0)
    chunk = b"x" * 100 + b"\r\n"
    for _ in range(pump_mod.BURST_BYTES // len(chunk) + 10):
        p.ingest(chunk)
    p.stop_feeding()
    p.feed_tick()  # a burst since the last tick: nothing emulated
    assert p.emu is not None and p.emu.pending
    p.stop_feeding()
    p.ingest(b"calm\r\n")
    p.stop_feeding()
    p.feed_tick()  # quiet since: the screen catches up
    assert not p.emu.pending
    assert "calm" in p.render("plain", True)["text"]


def test_a_pump_that_saw_no_output_holds_no_screen_until_asked(loop: ev.Loop) -> None:
    p = Pump(loop, -1, 80, 24, lambda: 0.0)
    p.resize_screen(100, 30)
    assert p.emu is None  # a resize before any output only remembers the size
    shot = p.render("plain", True)
    assert p.emu is not None and (shot["cols"], shot["rows"]) == (100, 30)
    p.ingest(b"first run\r\n")
    p.new_screen()  # a restart: the next run starts blank
    assert p.emu is None
    assert "first run" not in p.render("plain", True)["text"]


@pytest.mark.process
def test_the_supervisor_loads_no_asyncio_threading_or_subprocess() -> None:
    """What a forked supervisor touches is its memory: its modules stay the lean set. The
    screen (pyte, typing) is loaded with it, once in the session host, whose forks share it;
    a supervisor's first screen is then only the emulator's own few hundred KB."""
    code = (
        "import sys, looop.sessions.supervisor as s; "
        "print(sorted(m for m in ('asyncio', 'threading', 'subprocess', 'pathlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=20
    )
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.process
def test_the_session_host_and_a_failure_report_load_no_subprocess_pathlib_or_traceback() -> None:
    """The session host imports the names it shares with its clients (hostnames), never
    spawner, which starts processes; a supervisor's failure is printed by the interpreter's
    C printer, so `traceback` never loads in one."""
    code = (
        "import sys, looop.sessions.host\n"
        "from looop.sessions.evloop import log_failure\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log_failure('boom')\n"
        "print(sorted(m for m in ('subprocess', 'pathlib', 'traceback', 'threading', "
        "'looop.sessions.spawner') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=20
    )
    assert out.stdout.strip() == "[]", out.stdout
    assert "boom\nTraceback (most recent call last):" in out.stderr, out.stderr
    assert "ZeroDivisionError: division by zero" in out.stderr, out.stderr


# -- the log writer thread -------------------------------------------------------------------


def _log_pump(loop: ev.Loop, path: str) -> Pump:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    return Pump(loop, fd, 80, 24, lambda: 0.0)


def test_a_burst_through_the_writer_thread_is_logged_whole_and_in_order(
    loop: ev.Loop, tmp_path: Path
) -> None:
    """Big batches go through the writer thread, small ones after them too (while it runs):
    output.log holds every byte in order once the run's master is released."""
    path = str(tmp_path / "output.log")
    p = _log_pump(loop, path)
    payload = _payload(5 * 1024 * 1024)
    sizes = [300, pump_mod.LOG_THREAD_MIN, 7, READ_BATCH * READ_SIZE, 1]
    pos = k = 0
    while pos < len(payload):
        n = sizes[k % len(sizes)]
        p.ingest(payload[pos : pos + n])
        pos += n
        k += 1
        if pos > pump_mod.LOG_THREAD_MIN * 2:
            assert p.log_writer is not None  # the burst runs through the thread
    assert p.log_size == len(payload)
    p.release_master(-1)  # a run ends: its output is all on disk, no thread is left
    assert p.log_writer is None
    with open(path, "rb") as f:
        assert f.read() == payload
    assert p.log_error is None
    p.close_log()


def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def _born_since(before: set[str]) -> set[str]:
    """The threads started since `before` that still run, once none does (an ended thread
    leaves a moment after it says so), or those left after ten seconds. Counted by id, not
    by number: a thread of an earlier test may leave meanwhile."""
    deadline = time.monotonic() + 10
    while _threads() - before and time.monotonic() < deadline:
        time.sleep(0.005)
    return _threads() - before


@pytest.mark.process  # a real thread on real time: its end is seen a moment after it says so
@pytest.mark.timeout(30)
def test_the_writer_thread_ends_once_output_is_quiet(
    loop: ev.Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pump_mod, "LOG_IDLE_S", 0.05)
    before = _threads()
    p = _log_pump(loop, str(tmp_path / "output.log"))
    p.ingest(b"x" * pump_mod.LOG_THREAD_MIN)
    assert p.log_writer is not None and len(_threads() - before) == 1
    # the loop turns until the pump ends its writer (after LOG_IDLE_S quiet, and once the
    # thread wrote what it was handed: a loaded machine may take a while to run it)
    deadline = time.monotonic() + 10
    while p.log_writer is not None and time.monotonic() < deadline:
        loop.run_for(0.05)
    assert p.log_writer is None
    assert _born_since(before) == set()  # a quiet supervisor holds no thread
    p.ingest(b"after\n")  # small output after it: written on the loop, no thread
    assert p.log_writer is None
    p.close_log()
    assert (tmp_path / "output.log").read_bytes() == b"x" * pump_mod.LOG_THREAD_MIN + b"after\n"


def test_a_log_the_writer_thread_cannot_write_is_reported_and_the_pump_goes_on(
    loop: ev.Loop, tmp_path: Path
) -> None:
    path = tmp_path / "output.log"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # every write fails (EBADF)
    p = Pump(loop, fd, 80, 24, lambda: 0.0)
    p.ingest(b"y" * pump_mod.LOG_THREAD_MIN)
    p.release_master(-1)
    assert p.log_error is not None and "output.log write failed" in p.log_error
    assert p.log_fd == -1 and p.log_writer is None
    p.ingest(b"still pumped\r\n")  # the screen and the backlog still take output
    assert "still pumped" in p.render("plain", True)["text"]
    assert p.backlog_bytes_joined().endswith(b"still pumped\r\n")
    p.close_log()


@pytest.mark.process
def test_a_slow_log_holds_the_loop_back_instead_of_queueing_without_bound(loop: ev.Loop) -> None:
    """The writer thread is never more than LOG_AHEAD_MAX (and one batch) behind: past that
    the loop waits for it, as it waited for the disk before, and the child is held back."""
    r, w = os.pipe2(os.O_CLOEXEC)
    got: list[bytes] = []

    def slow_disk() -> None:
        while chunk := os.read(r, 65536):
            got.append(chunk)
            time.sleep(0.001)

    reader = threading.Thread(target=slow_disk)
    reader.start()
    p = Pump(loop, w, 80, 24, lambda: 0.0)
    payload = _payload(4 * 1024 * 1024)
    batch = READ_BATCH * READ_SIZE
    behind = 0
    for pos in range(0, len(payload), batch):
        p.ingest(payload[pos : pos + batch])
        assert p.log_writer is not None
        behind = max(behind, p.log_writer.sent - p.log_writer.done)
    assert behind <= pump_mod.LOG_AHEAD_MAX + batch
    p.close_log()  # waits for the writer, then closes the pipe: the reader sees EOF
    reader.join(10)
    os.close(r)
    assert b"".join(got) == payload


def test_without_a_thread_to_be_had_the_burst_is_logged_on_the_loop(
    loop: ev.Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_a: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    path = tmp_path / "output.log"
    p = _log_pump(loop, str(path))
    payload = _payload(2 * 1024 * 1024)
    batch = READ_BATCH * READ_SIZE
    for pos in range(0, len(payload), batch):
        p.ingest(payload[pos : pos + batch])
        assert p.log_writer is None
    assert path.read_bytes() == payload  # written at once, nothing lost
    assert p.log_error is None
    p.close_log()


# -- a log lost to a full disk, and written again ------------------------------------------------


class _Clocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_790_000_000.0

    def step(self, s: float) -> None:
        self.mono += s
        self.wall += s


def _full_pump(loop: ev.Loop, tmp_path: Path, clocks: _Clocks, noted: list[str]) -> Pump:
    """A pump whose output.log is on a full disk (/dev/full: every write fails ENOSPC) and
    whose log folder has room: the next output.log it opens there is written."""
    fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    p = Pump(loop, fd, 80, 24, lambda: clocks.mono, str(tmp_path))
    p.keep_gaps(lambda: clocks.wall, noted.append)
    return p


@pytest.mark.parametrize("burst", [False, True], ids=["on the loop", "through the writer"])
def test_a_log_lost_to_a_full_disk_is_written_again_and_says_how_much_it_lost(
    loop: ev.Loop, tmp_path: Path, burst: bool
) -> None:
    clocks, noted = _Clocks(), []
    p = _full_pump(loop, tmp_path, clocks, noted)
    first = b"y" * (pump_mod.LOG_THREAD_MIN if burst else 10)
    p.ingest(first)  # fails: the log is closed, the gap begins
    p.release_master(-1)  # a writer thread, if one ran, has given up what it held
    assert p.log_fd == -1 and p.log_error is not None and "No space" in p.log_error
    clocks.step(0.5)
    p.ingest(b"z" * 20)  # before the backoff is over: dropped, counted
    assert not (tmp_path / "output.log").exists() and noted == []
    clocks.step(RETRY_S)
    p.ingest(b"back\r\n")  # due: output.log is opened again and written
    lost = len(first) + 20
    text = (tmp_path / "output.log").read_bytes().decode()
    line = re.escape(f"looop: output.log lost {lost} bytes of output between ")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(
        rf"\r\n{line}{stamp} and {stamp} \(output.log write failed: No space left on device\)"
        r"\r\nback\r\n",
        text,
    ), text
    assert noted == [text.strip().splitlines()[0].removeprefix("looop: ")]
    p.ingest(b"on\r\n")  # written on, and the gap said once only
    assert (tmp_path / "output.log").read_bytes().decode() == text + "on\r\n"
    assert p.log_error is None and len(noted) == 1
    p.close_log()


def test_a_log_whose_disk_is_still_full_at_the_retry_counts_on_and_backs_off(
    loop: ev.Loop, tmp_path: Path
) -> None:
    clocks, noted = _Clocks(), []
    p = _full_pump(loop, tmp_path, clocks, noted)
    p.ingest(b"a" * 7)
    (tmp_path / "output.log").mkdir()  # the retry cannot open output.log
    clocks.step(RETRY_S)
    p.ingest(b"b" * 5)  # due, fails: counted, the next try twice as far off
    (tmp_path / "output.log").rmdir()
    clocks.step(RETRY_S)
    p.ingest(b"c" * 3)  # not due yet (2 s after the failed try)
    assert not (tmp_path / "output.log").exists()
    clocks.step(RETRY_S)
    p.ingest(b"ok\r\n")
    text = (tmp_path / "output.log").read_bytes().decode()
    assert "looop: output.log lost 15 bytes of output between " in text, text
    assert text.endswith(")\r\nok\r\n") and len(noted) == 1
    p.close_log()
