"""The per-session supervisor: `python -m looop.sessions.supervisor --id ID --root DIR … -- CMD…`.

One process per session, started by `client.spawn` (which sets its cwd and env). It forks
once more (so it is never a session leader and the spawner never keeps a zombie), takes the
session lock for life, runs CMD on a fresh PTY, pumps the output into `output.log`, a 1 MiB
backlog, the lazily fed screen and every attached client, and serves the control socket. All
of that runs on one asyncio loop; only the PTY reads have a thread of their own (`PtyReader`).
This is the only module that reads the real environment and clock; it imports everything at
startup (package files may be replaced while a long session runs).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looop.core import store
from looop.core.clock import utc_stamp_ms
from looop.sessions import protocol as proto
from looop.sessions.screen import FORMATS, Emulator
from looop.sessions.state import (
    LOCK,
    LOG,
    META,
    SessionError,
    ensure_socket_dir,
    validate_id,
    write_status,
)

HUP_GRACE_S = 0.3  # SIGHUP → SIGKILL escalation
KILL_WAIT_S = 2.0  # after SIGKILL: for the child, then for its group
DRAIN_QUIET_S = 0.5  # end of the post-exit drain: this long without output …
DRAIN_CAP_S = 5.0  # … or this long in total (a grandchild may keep the PTY busy)
CLIENT_GRACE_S = 2.0  # attached clients get this long to take their EXIT frame
REQUEST_READ_S = 10.0
REPLY_WRITE_S = 10.0
FEED_INTERVAL_S = 0.02  # background screen feeding: one slice this often …
FEED_BUDGET_S = 0.005  # … of at most this long, so the pump keeps most of the CPU
BURST_BYTES = 64 * 1024  # output per feed interval above which background feeding pauses
IDLE_CHECK_S = 0.5
# One read takes at most the line discipline's 4 KiB buffer: asking for more only lets a read
# run on while the kernel refills it, and the writer is woken when a read ends.
READ_SIZE = 4096
READ_BATCH = 32  # reads joined into one hand-over to the loop, at most
HANDOFF_MAX = 4 * 1024 * 1024  # output read but not yet taken by the loop: beyond it, stop reading
READER_JOIN_S = 2.0
MAX_SIZE = 1000  # cols/rows beyond this are clamped (pyte cost grows with the grid)
_RESET_SIGNALS = [
    s
    for s in (
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGTERM",
        "SIGCHLD",
        "SIGPIPE",
        "SIGALRM",
        "SIGXFSZ",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGUSR1",
        "SIGUSR2",
    )
    if hasattr(signal, s)
]
PR_SET_CHILD_SUBREAPER = 36


class OpError(Exception):
    """A request the supervisor refuses; the message goes back to the caller verbatim."""


# -- argv --------------------------------------------------------------------------------


@dataclass
class Args:
    sid: str = ""
    root: str = ""
    cols: int = 80
    rows: int = 24
    timeout_s: float | None = None
    idle_timeout_s: float | None = None
    ready_fd: int | None = None
    cmd: list[str] = field(default_factory=list)


_KNOWN = ("--id", "--root", "--size", "--timeout-ms", "--idle-timeout-ms", "--ready-fd")


def parse_args(argv: list[str]) -> Args:
    """Tolerant parse: unknown `--flag value` pairs are skipped (forward compatibility)."""
    opts: dict[str, str] = {}
    cmd: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            cmd = argv[i + 1 :]
            break
        if not a.startswith("--"):
            cmd = argv[i:]
            break
        if "=" in a:
            key, value = a.split("=", 1)
            i += 1
        else:
            key = a
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is None or nxt.startswith("--"):
                value = ""
                i += 1
            else:
                value = nxt
                i += 2
        if key in _KNOWN:
            opts[key] = value
    args = Args(sid=opts.get("--id", ""), root=opts.get("--root", ""), cmd=cmd)
    size = opts.get("--size", "")
    if "x" in size:
        c, r = size.lower().split("x", 1)
        if c.isdigit() and r.isdigit() and int(c) > 0 and int(r) > 0:
            args.cols, args.rows = min(int(c), MAX_SIZE), min(int(r), MAX_SIZE)
    for key, attr in (("--timeout-ms", "timeout_s"), ("--idle-timeout-ms", "idle_timeout_s")):
        v = opts.get(key, "")
        if v.isdigit() and int(v) > 0:
            setattr(args, attr, int(v) / 1000.0)
    fd = opts.get("--ready-fd", "")
    if fd.isdigit():
        args.ready_fd = int(fd)
    return args


# -- small helpers -----------------------------------------------------------------------


def _log(msg: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"looop-supervisor[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def _stamp() -> str:
    return utc_stamp_ms(time.time())


def _pid_start() -> int | None:
    """Start time of this process (clock ticks since boot): pid + this survive pid reuse."""
    try:
        raw = Path("/proc/self/stat").read_text()
        return int(raw.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _set_subreaper() -> None:
    """Orphaned descendants come back to us, so a killed group can be confirmed empty even
    where pid 1 does not reap zombies (containers)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _winsize(cols: int, rows: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


def _child_setup() -> None:
    """In the child between fork and exec: take the PTY as controlling terminal, default
    signal dispositions, empty mask (Popen already did setsid and the stdio dup2s)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for name in _RESET_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Child:
    """One run of CMD on its own PTY (a restart makes a new one)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], master: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.master = master
        self.exited: asyncio.Future[None] = loop.create_future()
        self.eof = asyncio.Event()
        self.signaled = False
        self.code: int | None = None
        self.escalated = False
        self.pidfd = -1
        self.reader: PtyReader | None = None

    @property
    def done(self) -> bool:
        return self.exited.done()

    def set_wait_status(self, status: int) -> None:
        if self.exited.done():
            return
        if os.WIFSIGNALED(status):
            self.signaled, self.code = True, None
        else:
            self.code = os.waitstatus_to_exitcode(status)
        # Tell Popen too, so it never waitpid()s a recycled pid later.
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.exited.set_result(None)


class PtyReader:
    """Reads a child's PTY master on a thread of its own and hands each batch to the loop.

    A Linux PTY hands out at most 4 KiB per read, and each read waits on the kernel's tty
    flush worker. On the loop, those reads took turns with the per-batch work (log write,
    backlog, screen, clients); on a thread (the reads release the GIL) they overlap it. All
    session state stays on the loop: this thread only reads and calls `deliver` / `done` there.
    At most HANDOFF_MAX bytes wait for the loop; beyond that the thread stops reading, so a
    busy loop still holds the child back through the PTY, as when it read the PTY itself.
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
        self.queued = 0  # bytes handed to the loop and not yet delivered
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.thread = threading.Thread(target=self._run, name="pty-reader", daemon=True)
        self.thread.start()

    def stop(self) -> bool:
        """On the loop: end the thread (output already handed over is still delivered).
        False when it did not end in time; the master must then stay open."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")
        self.thread.join(READER_JOIN_S)
        if self.thread.is_alive():
            return False
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.wake_r = self.wake_w = -1
        return True

    def _run(self) -> None:
        # Signals belong to the loop's thread (its wakeup fd); this one only reads.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        eof = False
        while not eof and not self.stopping:
            poller.poll()
            parts: list[bytes] = []
            for _ in range(READ_BATCH):
                try:
                    data = os.read(self.master, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if not data:
                    eof = True
                    break
                parts.append(data)
            if parts and not self._hand(parts[0] if len(parts) == 1 else b"".join(parts)):
                return
        if eof:
            self._call(self.done)

    def _hand(self, data: bytes) -> bool:
        with self.cond:
            while self.queued > HANDOFF_MAX and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return False
            self.queued += len(data)
        return self._call(self._delivered, data)

    def _delivered(self, data: bytes) -> None:
        with self.cond:
            self.queued -= len(data)
            self.cond.notify_all()
        self.deliver(data)

    def _call(self, fn: Callable[..., None], *args: Any) -> bool:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the supervisor is ending
            return False
        return True


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


# -- the supervisor ----------------------------------------------------------------------


class Supervisor:
    def __init__(self, args: Args) -> None:
        self.args = args
        self.sid = args.sid
        self.root = Path(args.root)
        self.sdir = self.root / "sessions" / args.sid
        self.argv = list(args.cmd)
        self.cols, self.rows = args.cols, args.rows
        self.ready_fd = args.ready_fd
        self.lock_fd = -1
        self.log_fd = -1
        self.log_size = 0
        self.log_error: str | None = None
        self.seq = 0
        self.last_output = 0.0
        # The last BACKLOG_MAX bytes as whole chunks: trimming drops chunks, never copies.
        self.backlog: deque[bytes] = deque()
        self.backlog_bytes = 0
        self.emu = Emulator(self.cols, self.rows)
        self.child: Child | None = None
        self.clients: set[AttachClient] = set()
        self.requests: set[asyncio.Task[Any]] = set()
        self.input_q: deque[bytes] = deque()
        self.input_bytes = 0
        self.writer_fd = -1
        self.finishing = False
        self.restarting = False
        self.end_reason: str | None = None
        self.status: dict[str, Any] = {
            "v": 1,
            "state": "starting",
            "child_pid": None,
            "exit_code": None,
            "signaled": False,
            "last_change": _stamp(),
            "cols": self.cols,
            "rows": self.rows,
            "error": None,
        }
        self.sock_path: Path | None = None
        self.sock_ino = -1
        self.feed_handle: asyncio.TimerHandle | None = None
        self.fed_mark = 0  # log size at the last feed tick (burst detection)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._life: asyncio.Lock | None = None
        self._final: asyncio.Future[dict[str, Any]] | None = None
        self._done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.children: dict[int, Child] = {}  # spawned and not yet reaped, by pid
        self.attached: set[asyncio.StreamWriter] = set()

    # ---- plumbing
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _task(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        t: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def ready(self, line: str) -> None:
        fd, self.ready_fd = self.ready_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, (line.replace("\n", " ") + "\n").encode())
        with contextlib.suppress(OSError):
            os.close(fd)

    def set_status(self, transition: bool = True, **changes: Any) -> None:
        self.status.update(changes)
        if transition:
            self.status["last_change"] = _stamp()
        try:
            write_status(self.sdir, self.status)
        except OSError as e:
            _log(f"cannot write status.json: {e}")

    def finished_msg(self) -> str:
        return f"session {self.sid} has already finished — it no longer accepts input"

    # ---- startup
    def take_lock(self) -> bool:
        self.sdir.mkdir(parents=True, exist_ok=True)
        self.lock_fd = os.open(self.sdir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # Readers probe with a brief shared lock; retry a little before calling it taken.
        for _ in range(100):
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                time.sleep(0.005)
        return False

    def write_meta(self) -> None:
        meta = {
            "v": 1,
            "id": self.sid,
            "cmd": self.argv,
            "supervisor_pid": os.getpid(),
            "pid_start": _pid_start(),
            "started_at": self.status["last_change"],
            "cwd": os.getcwd(),
        }
        store.write_json(self.sdir / META, meta)

    def spawn_child(self) -> Child:
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, _winsize(self.cols, self.rows))
            env = dict(os.environ)
            env.setdefault("TERM", "xterm-256color")
            proc = subprocess.Popen(
                self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=_child_setup,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # else the master never sees EOF when the child exits
        os.set_blocking(master, False)
        child = Child(proc, master, self.loop)
        self.children[child.pid] = child
        try:
            child.pidfd = os.pidfd_open(child.pid)
            self.loop.add_reader(child.pidfd, self.reap)
        except (OSError, AttributeError):
            child.pidfd = -1  # SIGCHLD still reaps it
        child.reader = PtyReader(
            master, self.loop, lambda data: self.on_output(child, data), child.eof.set
        )
        self.last_output = self.loop.time()
        self._task(self.watch(child))
        self.reap()  # it may already be gone
        return child

    async def bind(self) -> asyncio.AbstractServer:
        path = ensure_socket_dir(self.root, self.sid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket of a crashed run
        server = await asyncio.start_unix_server(
            self.handle, path=str(path), limit=proto.MAX_LINE + 1
        )
        os.chmod(path, 0o600)
        self.sock_path = path
        self.sock_ino = os.stat(path).st_ino
        return server

    def unlink_socket(self) -> None:
        path = self.sock_path
        if path is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self.sock_ino:  # not a successor's socket
                os.unlink(path)

    # ---- child exit
    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:  # else an adopted orphan: reaping it is all we owe it
                self._child_gone(child, status)

    def _child_gone(self, child: Child, status: int) -> None:
        if child.pidfd >= 0:
            self.loop.remove_reader(child.pidfd)
            os.close(child.pidfd)
            child.pidfd = -1
        child.set_wait_status(status)

    async def watch(self, child: Child) -> None:
        await child.exited
        if self.restarting or child is not self.child or self.finishing:
            return
        await self.finish(child)

    # ---- pump
    def on_output(self, child: Child, data: bytes) -> None:
        if child is self.child:  # else a restarted run's last words: dropped, as before
            self.ingest(data)

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
                _log(self.log_error)
                os.close(self.log_fd)
                self.log_fd = -1
        self.seq += 1
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
        burst = self.log_size - self.fed_mark > BURST_BYTES
        self.fed_mark = self.log_size
        if burst:  # it would be cut away anyway: emulate once the output calms down
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)
            return
        try:
            done = self.emu.feed_some(FEED_BUDGET_S, time.monotonic)
        except Exception:
            self.screen_failed()
            done = True
        if not done:
            self.feed_handle = self.loop.call_later(FEED_INTERVAL_S, self.feed_tick)

    def screen_failed(self) -> None:
        _log("screen emulation failed; starting a fresh screen\n" + traceback.format_exc())
        self.emu = Emulator(self.cols, self.rows)

    # ---- input
    def write_input(self, data: bytes) -> None:
        child = self.child
        if self.finishing or child is None or child.done or child.master < 0:
            raise OpError(self.finished_msg())
        if self.input_bytes + len(data) > proto.INPUT_QUEUE_MAX:
            raise OpError(f"session {self.sid} is not reading its input (input queue full)")
        if data:
            self.input_q.append(data)
            self.input_bytes += len(data)
            self.flush_input()

    def flush_input(self) -> None:
        child = self.child
        if child is None or child.master < 0:
            self.input_q.clear()
            self.input_bytes = 0
        else:
            while self.input_q:
                buf = self.input_q[0]
                try:
                    n = os.write(child.master, buf)
                except BlockingIOError:
                    break
                except OSError:
                    self.input_q.clear()
                    self.input_bytes = 0
                    break
                self.input_bytes -= n
                if n < len(buf):
                    self.input_q[0] = buf[n:]
                else:
                    self.input_q.popleft()
        want = -1 if child is None or not self.input_q else child.master
        if want != self.writer_fd:
            if self.writer_fd >= 0:
                self.loop.remove_writer(self.writer_fd)
            if want >= 0:
                self.loop.add_writer(want, self.flush_input)
            self.writer_fd = want

    def close_child_fds(self, child: Child) -> None:
        if child.master < 0:
            return
        if self.writer_fd == child.master:
            self.loop.remove_writer(child.master)
            self.writer_fd = -1
        reader, child.reader = child.reader, None
        if reader is not None and not reader.stop():
            _log("the PTY reader thread did not stop; leaving its master open")
            child.master = -1
            return
        os.close(child.master)  # hangs up the PTY: stragglers in its group get SIGHUP
        child.master = -1

    # ---- terminate / finish
    async def _until(self, cond: Callable[[], bool], timeout: float) -> bool:
        deadline = self.loop.time() + timeout
        while not cond():
            if self.loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def terminate(self, child: Child) -> tuple[bool, bool]:
        """SIGHUP the group; after 300 ms SIGKILL it. (confirmed gone, escalated)."""
        pgid = child.pid

        def gone() -> bool:
            return child.done and _group_gone(pgid)

        _killpg(pgid, signal.SIGHUP)
        if await self._until(gone, HUP_GRACE_S):
            return True, False
        child.escalated = True
        _killpg(pgid, signal.SIGKILL)
        child_ok = await self._until(lambda: child.done, KILL_WAIT_S)
        group_ok = await self._until(lambda: _group_gone(pgid), KILL_WAIT_S)
        return child_ok and group_ok, True

    async def drain(self, child: Child, quiet: float, cap: float) -> None:
        """Read what is left until EOF, `quiet` seconds of silence or `cap` in total."""
        start = self.loop.time()
        while not child.eof.is_set():
            now = self.loop.time()
            silent = now - max(self.last_output, start)
            left = min(quiet - silent, cap - (now - start))
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.eof.wait(), left)

    async def finish(self, child: Child, error: str | None = None) -> None:
        """Child gone: drain → terminal status → EXIT frames → clients → socket → (lock)."""
        if self.finishing:
            return
        self.finishing = True
        await child.exited
        await self.drain(child, DRAIN_QUIET_S, DRAIN_CAP_S)
        self.close_child_fds(child)
        if self.feed_handle is not None:
            self.feed_handle.cancel()
            self.feed_handle = None
        state = "killed" if child.signaled or child.escalated else "exited"
        self.set_status(
            state=state,
            child_pid=None,
            exit_code=child.code,
            signaled=child.signaled,
            error=error or self.end_reason or self.log_error,
        )
        assert self._final is not None
        if not self._final.done():
            self._final.set_result(dict(self.status))
        end = proto.exit_frame(child.signaled or state == "killed", child.code)
        for c in tuple(self.clients):
            c.finish(end)
        tasks = [c.task for c in self.clients if c.task is not None and not c.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=CLIENT_GRACE_S)
        for w in tuple(self.attached):  # includes clients dropped for not reading
            with contextlib.suppress(Exception):
                w.transport.abort()
        me = asyncio.current_task()
        pending = [t for t in self.requests if t is not me and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLIENT_GRACE_S)
        assert self._done is not None
        self._done.set()

    # ---- lifecycle ops
    async def kill(self, reason: str | None = None) -> dict[str, Any]:
        assert self._life is not None and self._final is not None
        async with self._life:
            child = self.child
            if self.finishing or child is None or child.done:
                raise OpError(f"session {self.sid} has already finished")
            self.end_reason = reason
            confirmed, escalated = await self.terminate(child)
        try:
            status = await asyncio.wait_for(asyncio.shield(self._final), DRAIN_CAP_S + 5)
        except TimeoutError:
            status = dict(self.status)  # an unkillable child: report what we know
        return {
            "killed": True,
            "confirmed": confirmed,
            "escalated": escalated,
            "state": status["state"],
            "exit_code": status["exit_code"],
        }

    async def auto_kill(self, reason: str) -> None:
        with contextlib.suppress(OpError):
            await self.kill(reason)

    async def restart(self) -> dict[str, Any]:
        assert self._life is not None
        async with self._life:
            old = self.child
            if self.finishing or old is None or old.done:
                raise OpError(f"session {self.sid} has already finished — restart needs a live one")
            self.restarting = True
            try:
                confirmed, escalated = await self.terminate(old)
                await self.drain(old, 0.2, 1.0)
                self.close_child_fds(old)
                self.input_q.clear()
                self.input_bytes = 0
                try:
                    new = self.spawn_child_swapped()
                except (OSError, subprocess.SubprocessError) as e:
                    msg = f"restart failed: cannot run `{self.argv[0]}`: {_why(e)}"
                    self._task(self.finish(old, error=msg))
                    raise OpError(msg) from e
            finally:
                self.restarting = False
            self.set_status(state="running", child_pid=new.pid, exit_code=None, signaled=False)
        return {
            "restarted": True,
            "child_pid": new.pid,
            "confirmed": confirmed,
            "escalated": escalated,
            "cols": self.cols,
            "rows": self.rows,
        }

    def spawn_child_swapped(self) -> Child:
        self.emu = Emulator(self.cols, self.rows)  # a fresh screen for the new run
        self.child = None
        new = self.spawn_child()
        self.child = new
        return new

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        cols = min(cols, MAX_SIZE) if cols > 0 else self.cols
        rows = min(rows, MAX_SIZE) if rows > 0 else self.rows
        if (cols, rows) == (self.cols, self.rows):
            return cols, rows
        child = self.child
        if child is not None and child.master >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(child.master, termios.TIOCSWINSZ, _winsize(cols, rows))
        try:
            self.emu.resize(cols, rows)
        except Exception:
            self.cols, self.rows = cols, rows
            self.screen_failed()
        self.cols, self.rows = cols, rows
        self.set_status(transition=False, cols=cols, rows=rows)
        return cols, rows

    def detach_all(self) -> int:
        n = 0
        for c in tuple(self.clients):
            if not c.dropped and c.end is None:
                c.finish(proto.frame(proto.DETACHED))
                n += 1
        return n

    # ---- control socket
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.requests.add(task)
        try:
            reply = await self._serve(reader, writer)
            if reply is not None:
                writer.write(reply)
                await asyncio.wait_for(writer.drain(), REPLY_WRITE_S)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self.requests.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_READ_S)
        except (ValueError, asyncio.LimitOverrunError):
            return proto.error(f"invalid request: longer than {proto.MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            return None
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ValueError("expected an object with an `op`")
        except ValueError as e:
            return proto.error(f"invalid request: {e}")
        op = req["op"]
        if op == "attach":
            await self.attach(reader, writer, req)
            return None
        try:
            return proto.ok(await self.dispatch(op, req))
        except OpError as e:
            return proto.error(str(e))
        except Exception as e:
            _log(f"op {op} failed\n{traceback.format_exc()}")
            return proto.error(f"internal error in `{op}`: {e}")

    async def dispatch(self, op: str, req: dict[str, Any]) -> Any:
        if op == "status":
            return {**self.status, "output_bytes": self.log_size, "screen_seq": self.seq}
        if op == "screenshot":
            fmt = req.get("format", "plain")
            if fmt not in FORMATS:
                raise OpError(f"invalid request: unknown format `{fmt}` (plain, ansi or json)")
            try:
                shot = self.emu.render(str(fmt), bool(req.get("trim", True)))
            except Exception:
                self.screen_failed()
                shot = self.emu.render(str(fmt), bool(req.get("trim", True)))
            shot["screen_seq"] = self.seq
            return shot
        if op == "send":
            return self.op_send(req)
        if op == "resize":
            cols, rows = _int_field(req, "cols"), _int_field(req, "rows")
            cols, rows = self.resize(cols, rows)
            return {"cols": cols, "rows": rows}
        if op == "kill":
            return await self.kill()
        if op == "restart":
            return await self.restart()
        if op == "detach":
            return {"detached": True, "clients": self.detach_all()}
        raise OpError(f"invalid request: unknown op `{op}`")

    def op_send(self, req: dict[str, Any]) -> dict[str, Any]:
        if isinstance(req.get("data_b64"), str):
            try:
                data = base64.b64decode(req["data_b64"], validate=True)
            except ValueError as e:
                raise OpError(f"invalid request: bad data_b64 ({e})") from e
        elif isinstance(req.get("text"), str):
            data = req["text"].encode("utf-8", "surrogateescape")
        else:
            raise OpError("invalid request: send needs `text` or `data_b64`")
        if req.get("newline", True):
            data += b"\n"
        offset = self.log_size
        self.write_input(data)
        return {"sent": len(data), "offset": offset}

    async def attach(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: dict[str, Any]
    ) -> None:
        cols, rows = _int_field(req, "cols"), _int_field(req, "rows")
        if cols > 0 and rows > 0 and not self.finishing:
            self.resize(cols, rows)
        client = AttachClient(writer)
        if self.backlog:
            client.push(b"".join(self.backlog)[-proto.BACKLOG_MAX :])
        assert self._final is not None
        if self._final.done():
            st = self._final.result()
            client.finish(proto.exit_frame(st["state"] == "killed", st["exit_code"]))
        self.clients.add(client)
        self.attached.add(writer)
        client.task = asyncio.ensure_future(self.client_writer(client))
        try:
            while True:
                head = await reader.readexactly(proto.HEADER.size)
                tag, n = proto.HEADER.unpack(head)
                if n > proto.MAX_FRAME:
                    break
                payload = await reader.readexactly(n) if n else b""
                if tag == proto.INPUT:
                    with contextlib.suppress(OpError):
                        self.write_input(payload)
                elif tag == proto.RESIZE and len(payload) >= proto.SIZE_BODY.size:
                    c, r = proto.parse_size(payload)
                    if c > 0 and r > 0 and not self.finishing:
                        self.resize(c, r)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.clients.discard(client)
            self.attached.discard(writer)
            if client.task is not None and not client.task.done() and client.end is None:
                client.task.cancel()

    async def client_writer(self, c: AttachClient) -> None:
        w = c.writer
        try:
            while True:
                if c.queue:
                    parts: list[bytes] = []
                    size = 0
                    while c.queue and size < 256 * 1024:
                        b = c.queue.popleft()
                        parts.append(b)
                        size += len(b)
                    c.queued -= size
                    w.write(proto.frame(proto.OUTPUT, b"".join(parts)))
                    await w.drain()
                    continue
                if c.end is not None:
                    w.write(c.end)
                    await w.drain()
                    break
                c.wake.clear()
                await c.wake.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            if not c.dropped:
                with contextlib.suppress(Exception):
                    w.close()
            self.clients.discard(c)

    # ---- main
    def on_signal(self, signame: str) -> None:
        self._task(self.auto_kill(f"supervisor got {signame}"))

    def idle_check(self) -> None:
        idle = self.args.idle_timeout_s
        if idle is None or self.finishing:
            return
        quiet = self.loop.time() - self.last_output
        if quiet >= idle:
            self._task(self.auto_kill(f"idle for {idle:g}s"))
            return
        self.loop.call_later(min(IDLE_CHECK_S, idle - quiet), self.idle_check)

    async def main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._life = asyncio.Lock()
        self._final = self.loop.create_future()
        self._done = asyncio.Event()
        loop = self.loop
        loop.add_signal_handler(signal.SIGCHLD, self.reap)
        loop.add_signal_handler(signal.SIGTERM, self.on_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.on_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        _set_subreaper()
        try:
            self.child = self.spawn_child()
        except (OSError, subprocess.SubprocessError) as e:
            reason = f"cannot run `{self.argv[0]}`: {_why(e)}"
            self.set_status(state="exited", exit_code=None, error=reason)
            self.ready(f"err {reason}")
            return 1
        child = self.child
        self.set_status(state="running", child_pid=child.pid)
        try:
            server = await self.bind()
        except (OSError, SessionError) as e:
            reason = f"cannot bind the control socket: {e}"
            self.finishing = True
            await self.terminate(child)
            self.close_child_fds(child)
            self.set_status(state="killed", child_pid=None, exit_code=1, error=reason)
            self.ready(f"err {reason}")
            return 1
        self.ready(f"ok {os.getpid()}")
        if self.args.timeout_s is not None:
            t = self.args.timeout_s
            loop.call_later(t, lambda: self._task(self.auto_kill(f"timed out after {t:g}s")))
        if self.args.idle_timeout_s is not None:
            loop.call_later(min(IDLE_CHECK_S, self.args.idle_timeout_s), self.idle_check)
        await self._done.wait()
        server.close()
        self.unlink_socket()
        for req in list(self.requests):
            req.cancel()
        return 0

    def run(self) -> int:
        if not self.argv:
            self.ready("err no command given")
            return 2
        try:
            validate_id(self.sid)
        except SessionError as e:
            self.ready(f"err {e}")
            return 2
        if not self.take_lock():
            self.ready(f"err session `{self.sid}` is already running")
            return 1
        try:
            self.write_meta()
            self.set_status()
            self.log_fd = os.open(
                self.sdir / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
            self.log_size = os.fstat(self.log_fd).st_size
            return asyncio.run(self.main())
        except BaseException as e:
            _log("supervisor crashed\n" + traceback.format_exc())
            if self.status["state"] in ("starting", "running"):
                self.set_status(state="exited", child_pid=None, error=f"supervisor crashed: {e}")
            self.ready(f"err supervisor crashed: {e}")
            child = self.child
            if child is not None and not child.done:
                _killpg(child.pid, signal.SIGKILL)
            return 1
        finally:
            self.unlink_socket()
            if self.log_fd >= 0:
                os.close(self.log_fd)
            if self.lock_fd >= 0:
                os.close(self.lock_fd)  # releases the lock: the session now reads as over


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _int_field(req: dict[str, Any], key: str) -> int:
    v = req.get(key, 0)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _detach_stdio() -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1):
        with contextlib.suppress(OSError):
            os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Double fork: the spawner waits for this intermediate, which exits at once; the
    # supervisor (its child) is adopted by init and is never a session leader.
    with contextlib.suppress(OSError):
        os.setsid()
    try:
        pid = os.fork()
    except OSError as e:
        if args.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(args.ready_fd, f"err cannot fork: {e.strerror}\n".encode())
        return 1
    if pid > 0:
        os._exit(0)
    _detach_stdio()
    return Supervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
