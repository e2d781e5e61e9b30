"""The PTY pump: output from the child's PTY to `output.log`, the backlog, the screen and
every attached client; input from the control socket back to the PTY.

`PtyReader` reads on a thread of its own; everything else here runs on the supervisor's
loop. The pump knows nothing of states or lifecycles: it is told which master to write
input to (`use_master` / `release_master`) and fed whatever the current run prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from looop.sessions import protocol as proto
from looop.sessions.screen import Emulator

FEED_INTERVAL_S = 0.02  # background screen feeding: one slice this often …
FEED_BUDGET_S = 0.005  # … of at most this long, so the pump keeps most of the CPU
BURST_BYTES = 64 * 1024  # output per feed interval above which background feeding pauses …
BURST_RECHECK_S = 0.1  # … and looks again this much later (a wake-up of the loop costs the
# reader thread: in a burst the loop should wake as rarely as it can)
# One read takes at most the line discipline's 4 KiB buffer: asking for more only lets a read
# run on while the kernel refills it, and the writer is woken when a read ends.
READ_SIZE = 4096
READ_BATCH = 32  # reads in a row before the thread looks whether it should stop
HANDOFF_MAX = 8 * 1024 * 1024  # output read but not yet taken by the loop: beyond it, stop reading
# Output reaches the loop at once when it trickles (keystroke echo, a screen repaint); in a
# burst (a take of PACE_BYTES or more: about half a batch of back-to-back reads, more than a
# big screen repaint) the loop takes it every PACE_S, so it wakes ~30 times a second: each
# wake-up of the loop stalls the reader on the GIL and on the cores it shares with the kernel's
# tty worker and the writing child (measured at RT priority: 10 ms pacing streamed 50 MB ~25%
# slower than 30 ms).
# It is also how late output.log (and so `looop log -f`) can be behind the PTY in a burst.
PACE_BYTES = 64 * 1024
PACE_S = 0.03
READER_JOIN_S = 2.0


def log(msg: str) -> None:
    """A line on the supervisor's stderr (`supervisor.err`)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"looop-supervisor[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


class PtyReader:
    """Reads a child's PTY master on a thread of its own; the loop takes what it read.

    A Linux PTY hands out at most 4 KiB per read, and each read waits on the kernel's tty
    flush worker, so the thread only reads, back to back, and polls only when the PTY is
    empty. What it reads waits in `parts` until the loop takes it (`_take`): one wake-up of
    the loop covers everything read meanwhile, and in a burst the loop takes it on a timer
    (PACE_S), so the loop's per-take work (log write, backlog, screen, clients) is paid ~30
    times a second however fast the child prints. All session state stays on the
    loop. At most HANDOFF_MAX bytes wait; beyond that the thread stops reading, so a busy
    loop still holds the child back through the PTY. `done` runs on the loop after the last
    byte was delivered.
    """

    def __init__(
        self,
        master: int,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> None:
        self.master = master
        self.loop = loop
        self.deliver = deliver
        self.done = done
        self.cond = threading.Condition()
        # Shared with the thread, under `cond`:
        self.parts: list[bytes] = []  # read, not yet taken by the loop
        self.queued = 0  # their length
        self.eof = False  # the thread saw the end of the PTY
        self.scheduled = False  # a take is on its way to the loop (call or timer)
        self.stopping = False
        # The loop's own:
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False  # `done` was called
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.thread = threading.Thread(target=self._run, name="pty-reader", daemon=True)
        self.thread.start()

    def stop(self) -> bool:
        """On the loop: end the thread and deliver what it had read. False when it did not
        end in time; the master must then stay open."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")
        self.thread.join(READER_JOIN_S)
        if self.thread.is_alive():
            return False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._take(pace=False)
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.wake_r = self.wake_w = -1
        return True

    # ---- the thread
    def _run(self) -> None:
        # Signals belong to the loop's thread (its wakeup fd); this one only reads.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        master, read = self.master, os.read
        eof = False
        while not eof and not self.stopping:
            parts: list[bytes] = []
            empty = False
            for _ in range(READ_BATCH):
                try:
                    data = read(master, READ_SIZE)
                except BlockingIOError:
                    empty = True
                    break
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if not data:
                    eof = True
                    break
                parts.append(data)
            data = parts[0] if len(parts) == 1 else b"".join(parts)  # one piece per batch
            if (data or eof) and not self._hand(data, eof):
                return
            if empty:
                poller.poll()

    def _hand(self, data: bytes, eof: bool) -> bool:
        with self.cond:
            while self.queued > HANDOFF_MAX and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return False
            if data:
                self.parts.append(data)
                self.queued += len(data)
            self.eof = eof
            if self.scheduled and not eof:
                return True  # the take already on its way picks these up too
            self.scheduled = True  # (the end is never left to wait for a pacing timer)
        try:
            self.loop.call_soon_threadsafe(self._take)
        except RuntimeError:  # the loop is closed: the supervisor is ending
            return False
        return True

    # ---- the loop
    def _take(self, pace: bool = True) -> None:
        """Deliver everything read so far; `done` after the last of it."""
        if self.timer is not None:  # the end came first (or this is the timer: a no-op)
            self.timer.cancel()
            self.timer = None
        with self.cond:
            parts, self.parts = self.parts, []
            size, self.queued = self.queued, 0
            eof = self.eof
            # A burst: keep the take scheduled (the thread will not call) and come back later.
            again = pace and not eof and size >= PACE_BYTES
            self.scheduled = again
            self.cond.notify_all()
        if again:
            self.timer = self.loop.call_later(PACE_S, self._take)
        for data in parts:  # pieces of at most a batch: never one big copy on the loop
            self.deliver(data)
        if eof and not self.finished:
            self.finished = True
            self.done()


class AttachClient:
    """An attached connection: a bounded queue drained by its own writer task."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.wake = asyncio.Event()
        self.end: bytes | None = None  # the EXIT or DETACHED frame to send after the queue
        self.dropped = False
        self.task: asyncio.Task[None] | None = None

    def push(self, data: bytes) -> None:
        if self.dropped or self.end is not None:
            return
        if self.queued + len(data) > proto.CLIENT_QUEUE_MAX:
            self.drop()
            return
        self.queue.append(data)
        self.queued += len(data)
        self.wake.set()

    def finish(self, end: bytes) -> None:
        if self.end is None and not self.dropped:
            self.end = end
            self.wake.set()

    def drop(self) -> None:
        """Too slow a reader: forget its queue, tell it DETACHED, never block the pump."""
        if self.dropped:
            return
        self.dropped = True
        self.queue.clear()
        self.queued = 0
        if self.task is not None:
            self.task.cancel()
        with contextlib.suppress(Exception):
            self.writer.write(proto.frame(proto.DETACHED))
            self.writer.close()


class Pump:
    """Output fan-out and input queue for the session's current run."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        log_fd: int,
        cols: int,
        rows: int,
        monotonic: Callable[[], float],
    ) -> None:
        self.loop = loop
        self.log_fd = log_fd
        self.log_size = os.fstat(log_fd).st_size if log_fd >= 0 else 0
        self.log_error: str | None = None
        self.monotonic = monotonic
        self.cols, self.rows = cols, rows
        self.seq = 0
        self.last_output = loop.time()
        # The last BACKLOG_MAX bytes as whole chunks: trimming drops chunks, never copies.
        self.backlog: deque[bytes] = deque()
        self.backlog_bytes = 0
        self.emu = Emulator(cols, rows)
        self.clients: set[AttachClient] = set()
        self.feed_handle: asyncio.TimerHandle | None = None
        self.received = 0  # output bytes this supervisor took in (not the log: it may fail)
        self.fed_mark = 0  # `received` at the last feed tick (burst detection)
        self.master = -1  # where input goes: the current run's PTY
        self.input_q: deque[bytes] = deque()
        self.input_bytes = 0
        self.writer_fd = -1

    # ---- output
    def ingest(self, data: bytes) -> None:
        if self.log_fd >= 0:
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self.log_fd, view)
                    view = view[n:]
                    self.log_size += n
            except OSError as e:
                self.log_error = f"output.log write failed: {e.strerror}"
                log(self.log_error)
                os.close(self.log_fd)
                self.log_fd = -1
        self.seq += 1
        self.received += len(data)
        self.last_output = self.loop.time()
        backlog = self.backlog
        backlog.append(data)
        self.backlog_bytes += len(data)
        while self.backlog_bytes - len(backlog[0]) >= proto.BACKLOG_MAX:
            self.backlog_bytes -= len(backlog.popleft())
        try:
            self.emu.push(data)
        except Exception:
            self.screen_failed()
        if self.clients:
            for c in tuple(self.clients):
                c.push(data)
        if self.feed_handle is None:
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)

    def feed_tick(self) -> None:
        self.feed_handle = None
        burst = self.received - self.fed_mark > BURST_BYTES
        self.fed_mark = self.received
        if burst:  # it would be cut away anyway: emulate once the output calms down
            self.feed_handle = self.loop.call_later(BURST_RECHECK_S, self.feed_tick)
            return
        try:
            done = self.emu.feed_some(FEED_BUDGET_S, self.monotonic)
        except Exception:
            self.screen_failed()
            done = True
        if not done:
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)

    def stop_feeding(self) -> None:
        if self.feed_handle is not None:
            self.feed_handle.cancel()
            self.feed_handle = None

    def screen_failed(self) -> None:
        log("screen emulation failed; starting a fresh screen\n" + traceback.format_exc())
        self.emu = Emulator(self.cols, self.rows)

    def new_screen(self) -> None:
        """A fresh screen for a new run (a restart)."""
        self.emu = Emulator(self.cols, self.rows)

    def resize_screen(self, cols: int, rows: int) -> None:
        try:
            self.emu.resize(cols, rows)
        except Exception:
            self.cols, self.rows = cols, rows
            self.screen_failed()
        self.cols, self.rows = cols, rows

    def render(self, fmt: str, trim: bool) -> dict[str, Any]:
        try:
            shot = self.emu.render(fmt, trim)
        except Exception:
            self.screen_failed()
            shot = self.emu.render(fmt, trim)
        shot["screen_seq"] = self.seq
        return shot

    def backlog_bytes_joined(self) -> bytes:
        return b"".join(self.backlog)[-proto.BACKLOG_MAX :] if self.backlog else b""

    # ---- input
    def use_master(self, master: int) -> None:
        self.master = master
        self.last_output = self.loop.time()

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
        """`master` is about to close: stop writing to it."""
        if self.writer_fd == master:
            self.loop.remove_writer(master)
            self.writer_fd = -1
        if self.master == master:
            self.master = -1

    def close_log(self) -> None:
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1
