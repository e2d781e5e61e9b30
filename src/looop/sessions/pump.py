"""The PTY pump: output from the child's PTY to `output.log`, the backlog, the screen and
every attached client; input from the control socket back to the PTY.

Everything here runs on the supervisor's one loop (evloop.py): `PtyReader` (oscalls.py)
reads the non-blocking master when the loop says it is readable, back to back until it is
empty or a batch is full, and hands each batch on in one piece (one log write per batch).
While the loop is busy with a batch nobody reads, so a child that prints faster than the
supervisor takes it is held back by the PTY itself. In a burst the log writes go to a
`LogWriter` thread (it lives only while the burst does), so the loop reads on
while the kernel copies the last batch into the page cache. The pump knows nothing of
states or lifecycles: it is told which master to write input to (`use_master` /
`release_master`) and fed whatever the current run prints. The emulated screen is made when it
is first needed (output to emulate, a screenshot, a resize), so a worker that never printed
holds none. What it notes beside the log (its marks, a lost stretch) is outputnotes.py's;
each attached client's queue is controlconn.py's.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, Any

from looop.home import logfiles
from looop.sessions import protocol as proto
from looop.sessions.evloop import log, log_failure
from looop.sessions.outputnotes import Gap, OutputMark
from looop.sessions.screen import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.controlconn import AttachClient
    from looop.sessions.evloop import Future, Handle, Loop


FEED_INTERVAL_S = 0.02  # background screen feeding: one slice this often …
FEED_BUDGET_S = 0.005  # … of at most this long, so the pump keeps most of the CPU
BURST_BYTES = 64 * 1024  # output per feed interval above which background feeding pauses …
BURST_RECHECK_S = 0.1  # … and looks again this much later

# A batch this big starts the log writer thread (see LogWriter); smaller ones, when no
# writer runs, are written on the loop at once.
LOG_THREAD_MIN = 64 * 1024
LOG_AHEAD_MAX = 1024 * 1024  # handed to the writer, not yet written: the loop waits
LOG_IDLE_S = 1.0  # a writer with nothing to write for this long ends


class Pump:
    """Output fan-out and input queue for the session's current run."""

    def __init__(
        self,
        loop: Loop,
        log_fd: int,
        cols: int,
        rows: int,
        monotonic: Callable[[], float],
        log_dir: str = "",
        log_max: int = 0,
        log_files: int = logfiles.MAX_FILES,
    ) -> None:
        self.loop = loop
        self.log_fd = log_fd
        self.log_error: str | None = None
        self.gap: Gap | None = None  # a log that failed is tried again (keep_gaps)
        self.on_log_gap: Callable[[str], None] | None = None
        # Rotation (logfiles.py): `log_dir` and `log_max` > 0 turn it on. The cap is kept by
        # counting the bytes written, never a stat per write.
        self.log_dir = log_dir
        self.log_max = log_max if log_dir and log_max > 0 else 1 << 62
        self.log_files = max(logfiles.MIN_FILES, log_files)
        st = os.fstat(log_fd) if log_fd >= 0 else None
        self.file_size = st.st_size if st is not None else 0  # bytes in output.log now
        self.log_size = self.file_size  # logical: bytes this run's log holds, rotated or not
        self.log_pos: list[tuple[int, int]] = []  # output.pos: (inode, start), newest first
        if st is not None and log_dir:
            self.log_pos = [(st.st_ino, 0)]
            try:
                logfiles.write_pos(log_dir, self.log_pos)
            except OSError as e:  # the log is whole all the same: readers take it alone
                log(f"output.pos write failed: {e.strerror}")
        self.log_writer: LogWriter | None = None  # the log writer thread, during a burst
        self.log_check: Handle | None = None
        self.log_threads = True  # False once a writer thread could not be started
        self.monotonic = monotonic
        self.cols, self.rows = cols, rows
        self.seq = 0
        self.last_output = loop.time()
        # log/output.last (`stuck`) and log/output.times (`log --since`)
        self.mark = OutputMark(loop, log_dir, self.last_output, offset=lambda: self.log_size)
        # The last BACKLOG_MAX bytes as whole chunks: trimming drops chunks, never copies.
        self.backlog: deque[bytes] = deque()
        self.backlog_bytes = 0
        self.emu: Emulator | None = None  # made when first needed (see `screen`)
        self.clients: set[AttachClient] = set()
        self.hearing: set[Future] = set()  # requests woken by the next output (control.await_echo)
        self.feed_handle: Handle | None = None
        self.received = 0  # output bytes this supervisor took in (not the log: it may fail)
        self.fed_mark = 0  # `received` at the last feed tick (burst detection)
        self.master = -1  # where input goes: the current run's PTY
        self.input_q: deque[bytes] = deque()
        self.input_bytes = 0
        self.writer_fd = -1

    # ---- output
    def ingest(self, data: bytes) -> None:
        if self.log_fd >= 0:
            self.append_log(data)
        elif self.gap is not None and self.gap.since is not None:
            self.retry_log(data)
        self.seq += 1
        self.received += len(data)
        self.last_output = self.loop.time()
        self.mark.said(self.last_output)
        backlog = self.backlog
        backlog.append(data)
        self.backlog_bytes += len(data)
        while self.backlog_bytes - len(backlog[0]) >= proto.BACKLOG_MAX:
            self.backlog_bytes -= len(backlog.popleft())
        try:
            self.screen().push(data)
        except Exception:
            self.screen_failed()
        if self.clients:
            for c in tuple(self.clients):
                c.push(data)
        if self.hearing:
            for f in tuple(self.hearing):
                f.set_result(None)
        if self.feed_handle is None:
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)

    def append_log(self, data: bytes) -> None:
        """`data` to output.log, rotating it first when `data` would take it past the cap."""
        if self.file_size + len(data) <= self.log_max:
            self.write_log(data)
            return
        view = memoryview(data)
        while view and self.log_fd >= 0:
            room = self.log_max - self.file_size
            if room <= 0:
                self.rotate_log()
                continue
            self.write_log(bytes(view[:room]) if room < len(view) else bytes(view))
            view = view[room:]
        self.lose(len(view))  # what a failed write or rotation left unwritten

    def rotate_log(self) -> None:
        """output.log → output.log.1 (older ones up one, the oldest beyond the cap gone) and a
        new output.log; then output.pos says where each of this run's files starts. Whatever
        fails stops the log (the run goes on): a log past its cap is what this prevents."""
        if self.log_writer is not None:
            self.log_writer.flush()  # every byte of the old file is in it before the rename
            if self.log_writer.error is not None:
                self.stop_writer()
                return
        try:
            logfiles.shift(self.log_dir, self.log_files - 1)
            fd = logfiles.open_log(self.log_dir)
        except OSError as e:
            self.log_failed(f"output.log rotation failed: {e.strerror}")
            return
        os.close(self.log_fd)
        self.log_fd = fd
        if self.log_writer is not None:
            self.log_writer.fd = fd  # idle after the flush: its next write goes here
        self.file_size = 0
        failed = self.new_part(os.fstat(fd).st_ino)
        if failed is not None:
            self.log_failed(f"output.pos write failed: {failed}")

    def write_log(self, data: bytes) -> None:
        """`data` to output.log: on the loop at once, or through the writer thread while a
        burst lasts (started by a batch of LOG_THREAD_MIN; everything goes through it then)."""
        writer = self.log_writer
        if writer is None and len(data) >= LOG_THREAD_MIN and self.log_threads:
            try:
                writer = self.log_writer = LogWriter(self.log_fd)
            except RuntimeError as e:  # no thread to be had (limits): write here, as before
                self.log_threads = False
                log(f"no log writer thread ({e}); output.log is written on the loop")
            else:
                self.log_check = self.loop.call_later(LOG_IDLE_S, self.check_writer)
        if writer is not None and writer.error is not None:
            self.stop_writer()  # says what failed and closes the log
            self.lose(len(data))
            return
        try:
            if writer is None:
                write_all(self.log_fd, data)
            else:
                writer.put(data)
        except OSError as e:
            self.log_failed(f"output.log write failed: {e.strerror}")
            self.lose(len(data))
            return
        self.log_size += len(data)
        self.file_size += len(data)
        if writer is not None and writer.sent - writer.done > LOG_AHEAD_MAX:
            writer.flush()  # the disk is slower than the child: hold the child back

    def log_failed(self, error: str) -> None:
        """output.log cannot be written: say so once and stop writing it (the run goes on);
        where the log's folder is known, it is tried again on later output (`retry_log`)."""
        if self.log_error is None:
            self.log_error = error
            log(error)
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1
        if self.gap is not None:
            self.gap.failed()

    def lose(self, n: int) -> None:
        if self.gap is not None:
            self.gap.lost += n

    def keep_gaps(self, wall: Callable[[], float], noted: Callable[[str], None]) -> None:
        """Try output.log again after it failed (the disk full), on later output and after a
        backoff; once it is written again the log itself says what it lost (a `looop:` line
        where the gap is) and `noted` gets that line."""
        if self.log_dir:
            self.gap = Gap(wall, self.monotonic)
            self.on_log_gap = noted

    def retry_log(self, data: bytes) -> None:
        """Output while the log is lost: dropped until the next try is due, then output.log is
        opened again and `data` written; once that holds, the gap is noted (on_log_gap).
        Only an open and a write on the loop: a full disk answers at once."""
        gap = self.gap
        if gap is None or not gap.due():
            self.lose(len(data))
            return
        try:
            fd = logfiles.open_log(self.log_dir)
        except OSError:
            self.log_failed(self.log_error or "output.log cannot be opened")
            self.lose(len(data))
            return
        self.use_log(fd)
        note, lost = gap.said(self.log_error or ""), gap.lost
        self.append_log(f"\r\nlooop: {note}\r\n".encode())  # where the gap is, once
        if self.log_fd >= 0:
            self.append_log(data)
        self.stop_writer()  # a burst's bytes are out (or failed) before the gap is closed
        if self.log_fd < 0:
            gap.lost = lost + len(data)  # failed again (the note is no output of the run)
            return
        gap.closed()
        self.log_error = None
        log(note)
        if self.on_log_gap is not None:
            self.on_log_gap(note)

    def use_log(self, fd: int) -> None:
        """Write to `fd` (output.log opened again): the sizes from what the file holds; a new
        file (the old one removed meanwhile) starts a new part of this run's log."""
        st = os.fstat(fd)
        if self.log_pos and self.log_pos[0][0] == st.st_ino:
            self.log_size = self.log_pos[0][1] + st.st_size
        else:  # a failed output.pos: readers take output.log alone, its bytes all there
            self.new_part(st.st_ino)
        self.file_size = st.st_size
        self.log_fd = fd

    def new_part(self, ino: int) -> str | None:
        """A new file (inode `ino`) of this run's log starts at its logical size: output.pos
        says so; why it could not (the strerror)."""
        self.log_pos = [(ino, self.log_size), *self.log_pos][: self.log_files]
        try:
            logfiles.write_pos(self.log_dir, self.log_pos)
        except OSError as e:
            return e.strerror or str(e)
        return None

    def check_writer(self) -> None:
        """End the writer thread once output has been quiet for LOG_IDLE_S."""
        self.log_check = None
        writer = self.log_writer
        if writer is None:
            return
        if writer.done == writer.sent and self.loop.time() - self.last_output >= LOG_IDLE_S:
            self.stop_writer()
        else:
            self.log_check = self.loop.call_later(LOG_IDLE_S, self.check_writer)

    def stop_writer(self) -> None:
        """Once this returns, everything handed to the writer thread is in output.log (or
        its failure is reported) and no thread runs."""
        writer, self.log_writer = self.log_writer, None
        if self.log_check is not None:
            self.log_check.cancel()
            self.log_check = None
        if writer is not None:
            writer.stop()
            if writer.error is not None:
                self.log_failed(writer.error)
                self.lose(writer.lost)

    def feed_tick(self) -> None:
        self.feed_handle = None
        burst = self.received - self.fed_mark > BURST_BYTES
        self.fed_mark = self.received
        if burst:  # it would be cut away anyway: emulate once the output calms down
            self.feed_handle = self.loop.call_later(BURST_RECHECK_S, self.feed_tick)
            return
        try:
            done = self.screen().feed_some(FEED_BUDGET_S, self.monotonic)
        except Exception:
            self.screen_failed()
            done = True
        if not done:
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)

    def stop_feeding(self) -> None:
        if self.feed_handle is not None:
            self.feed_handle.cancel()
            self.feed_handle = None

    def screen(self) -> Emulator:
        """The emulator, made on first use (avt is preloaded in the session host, so this
        costs the first user only the screen's own few hundred KB)."""
        emu = self.emu
        if emu is None:
            emu = self.emu = Emulator(self.cols, self.rows)
        return emu

    def screen_failed(self) -> None:
        log_failure("screen emulation failed; starting a fresh screen")
        self.emu = None

    def new_screen(self) -> None:
        """A fresh screen (made when first needed) and no input left for a new run (a restart)."""
        self.emu = None
        self.clear_input()

    def resize_screen(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows  # a screen made later (none yet, one failed) is this size
        if self.emu is not None:
            try:
                self.emu.resize(cols, rows)
            except Exception:
                self.screen_failed()

    def render(self, fmt: str, trim: bool) -> dict[str, Any]:
        try:
            shot = self.screen().render(fmt, trim)
        except Exception:
            self.screen_failed()
            shot = self.screen().render(fmt, trim)
        shot["screen_seq"] = self.seq
        return shot

    def backlog_bytes_joined(self) -> bytes:
        return b"".join(self.backlog)[-proto.BACKLOG_MAX :] if self.backlog else b""

    # ---- input
    def use_master(self, master: int) -> None:
        self.master = master
        self.last_output = self.loop.time()
        self.mark.said(self.last_output)  # a new run starts quiet from now

    def queue_input(self, data: bytes) -> bool:
        """Queue `data` for the PTY; False (nothing queued) when the queue is full."""
        if self.input_bytes + len(data) > proto.INPUT_QUEUE_MAX:
            return False
        if data:
            self.input_q.append(data)
            self.input_bytes += len(data)
            self.flush_input()
        return True

    def clear_input(self) -> None:
        self.input_q.clear()
        self.input_bytes = 0

    def flush_input(self) -> None:
        master = self.master
        if master < 0:
            self.clear_input()
        else:
            while self.input_q:
                buf = self.input_q[0]
                try:
                    n = os.write(master, buf)
                except BlockingIOError:
                    break
                except OSError:
                    self.clear_input()
                    break
                self.input_bytes -= n
                if n < len(buf):
                    self.input_q[0] = buf[n:]
                else:
                    self.input_q.popleft()
        want = master if self.input_q else -1
        if want != self.writer_fd:
            if self.writer_fd >= 0:
                self.loop.remove_writer(self.writer_fd)
            if want >= 0:
                self.loop.add_writer(want, self.flush_input)
            self.writer_fd = want

    def release_master(self, master: int) -> None:
        """`master` is about to close: stop writing to it; its run's output is all logged."""
        self.stop_writer()
        if self.writer_fd == master:
            self.loop.remove_writer(master)
            self.writer_fd = -1
        if self.master == master:
            self.master = -1

    def output_ended(self) -> None:
        """The run's output is all in: on disk, and the index's last line where it ended
        (`log --since` after it is empty), before the session reads as over."""
        self.stop_writer()
        if self.mark.fdir:
            self.mark.index(True)

    def close_log(self) -> None:
        self.output_ended()  # again for a supervisor that crashed before its run's end
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (a short write goes on where it stopped); OSError as os.write."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """Writes output.log on a thread of its own while a burst lasts, so the loop goes on
    reading the PTY while the kernel copies the last batch into the page cache (the loop
    would otherwise leave the PTY unread meanwhile). While it runs only it writes the log,
    in the order chunks were handed over; it does nothing but `os.write`, and the pump ends
    it once output has been quiet for pump.LOG_IDLE_S, so a quiet supervisor holds no thread."""

    def __init__(self, fd: int) -> None:
        import threading  # lazy: in the session host it costs each fork ~200 kB (after-fork hook)

        self.fd = fd
        self.items: deque[Any] = deque()  # bytes to write, a flush marker, or None
        self.ready = threading.Semaphore(0)  # one release per item
        self.marker = threading.Event
        self.sent = 0  # bytes handed over (only the loop's thread changes it)
        self.done = 0  # bytes written or given up on (only the writer thread changes it)
        self.error: str | None = None  # the first failed write (set by the writer thread)
        self.lost = 0  # bytes not written: the failed write's and every one after it
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _hand(self, item: Any) -> None:
        self.items.append(item)
        self.ready.release()

    def put(self, data: bytes) -> None:
        self.sent += len(data)
        self._hand(data)

    def _run(self) -> None:
        while self.ready.acquire() and (item := self.items.popleft()) is not None:
            if callable(item):  # a flush marker: all before is out
                item()
                continue
            if self.error is None:
                try:
                    write_all(self.fd, item)
                except OSError as e:
                    self.error = f"output.log write failed: {e.strerror}"
                except BaseException as e:  # never die with work queued behind
                    self.error = f"output.log write failed: {e!r}"
            if self.error is not None:
                self.lost += len(item)
            self.done += len(item)

    def flush(self) -> None:
        """Wait until everything handed over is written."""
        marker = self.marker()
        self._hand(marker.set)
        marker.wait()

    def stop(self) -> None:
        """Write what is queued, then end the thread; returns once it has."""
        self._hand(None)
        self.thread.join()
