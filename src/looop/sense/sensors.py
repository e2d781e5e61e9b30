"""User sensors: every sensors/*.sh runs (at once, within the open-file limit) and leaves
exactly one snapshot; nothing a sensor starts outlives it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import signal
import subprocess
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from looop.core import jsonsafe, store
from looop.core.clock import Clock
from looop.core.config import Knobs
from looop.core.context import Ctx
from looop.core.paths import Paths
from looop.core.procs import UNCONTAINED, Containment

EXIT_TIMEOUT = 124
EXIT_NOT_EXECUTABLE = 126
EXIT_SPAWN = 127
GRACE_SECS = 0.3  # how long children left behind by an exited script may hold its pipes
KILL_WAIT_SECS = 2.0  # a SIGKILLed script that still has not exited is abandoned
POLL_SECS = 0.05  # exit polling, only where the OS has no pidfd
CHUNK = 65536
ERR_KEEP = 64 * 1024  # stderr tail kept in the .err file
STDERR_DETAIL = 1024  # stderr tail quoted inside a failure snapshot
HEAD_CHARS = 200
HEADER_LINES = 10
FDS_PER_SENSOR = 3  # what a running sensor holds open here: stdout, stderr, pidfd
FD_HEADROOM = 16  # one spawn's transient pipes, the selector, snapshot writes, /proc reads
MAX_CONCURRENT = 4096  # when the open-file limit is unlimited
SPAWN_RETRIES = 3  # out of files with none of ours running: someone else holds them
SPAWN_RETRY_SECS = 0.1
_INTERVAL = re.compile(rb"^\s*#.*\blooop:interval\s*=\s*(\d+)")
_SHAPE = '{"signal":{…},"detail":{…}}'


@dataclass(frozen=True)
class Reading:
    """How one sensor or probe went this beat."""

    name: str  # snapshot basename: sensor-<stem> or sys-<probe>
    ok: bool
    secs: float
    cached: bool = False  # kept from an earlier beat by `# looop:interval=N`
    error: str | None = None  # one-line reason when not ok
    unrecorded: bool = False  # the snapshot could not be written: the world on disk is stale


def sensor_scripts(paths: Paths) -> list[Path]:
    """Top-level regular `sensors/*.sh`, sorted."""
    try:
        entries = list(paths.sensors.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(p for p in entries if p.suffix == ".sh" and p.is_file())


def snapshot_name(script: Path) -> str:
    return f"sensor-{script.stem}"


def interval_of(script: Path) -> int | None:
    """Seconds from a `# looop:interval=N` comment among the first lines, else None."""
    try:
        with store.open_regular(script) as f:
            for _ in range(HEADER_LINES):
                line = f.readline(4096)
                if not line:
                    break
                m = _INTERVAL.match(line)
                if m:
                    return int(m.group(1))
    except OSError:
        return None
    return None


# ------------------------------------------------------------------ verdicts


def failure_snapshot(rc: int, message: str, stderr: bytes) -> dict[str, Any]:
    """The normalised failure: `signal` carries only the exit code, so it wakes once."""
    tail = stderr[-STDERR_DETAIL:].decode("utf-8", "replace").strip()
    return {
        "detail": {"message": message, "stderr": tail},
        "signal": {"error": True, "exit_code": rc},
    }


def oversize_snapshot(cap: int, seen: int) -> dict[str, Any]:
    """Size-stable: the byte count lives in `detail`, so a growing blob wakes only once."""
    return {
        "detail": {
            "bytes_at_least": seen,
            "message": f"sensor printed more than {cap} bytes and was stopped; print one small "
            f"{_SHAPE} object, not a raw dump (cap: LOOOP_SENSOR_MAX_BYTES)",
        },
        "signal": {"cap": cap, "error": "oversize"},
    }


def not_json_snapshot(out: bytes) -> dict[str, Any]:
    text = out.strip()
    unsafe = _unsafe_reason(text)
    if not text:
        why = f"sensor printed nothing; print one JSON object like {_SHAPE}"
    elif unsafe:
        why = f"sensor output {unsafe}"
    else:
        why = f"sensor output is not valid UTF-8 JSON; print one JSON object like {_SHAPE}"
    head = text.decode("utf-8", "replace")[:HEAD_CHARS]
    return {"detail": {"head": head, "message": why}, "signal": {"error": "not-json"}}


# A sensor's JSON must be carried into the hash, the prompt and status without surprises.
_MAX_DEPTH = 64
_MAX_INT_DIGITS = 4000


def _unsafe_reason(text: bytes) -> str | None:
    """Why valid JSON is still refused (a lone surrogate, NaN, too deep), or None."""
    try:
        jsonsafe.loads(text.decode("utf-8"), max_depth=_MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS)
    except jsonsafe.UnsafeJSON as e:
        return str(e)
    except ValueError:
        return None
    return None


def parse_output(out: bytes) -> bytes | None:
    """The snapshot bytes for valid UTF-8 JSON output (stripped + newline), else None."""
    try:
        text = out.decode("utf-8").strip()
        jsonsafe.loads(text, max_depth=_MAX_DEPTH, max_int_digits=_MAX_INT_DIGITS)
    except ValueError:  # UnicodeDecodeError, JSONDecodeError and UnsafeJSON are all ValueErrors
        return None
    return text.encode() + b"\n"


def is_error_snapshot(value: Any) -> bool:
    """True for the shapes this module writes when a sensor failed."""
    if not isinstance(value, dict):
        return False
    sig = value.get("signal")
    if not isinstance(sig, dict):
        return False
    err = sig.get("error")
    return (err is True and "exit_code" in sig) or err in ("oversize", "not-json")


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


@dataclass(frozen=True)
class _Verdict:
    body: bytes
    ok: bool
    error: str | None = None
    note: str | None = None  # appended to the .err file: looop's own explanation


def _dump(obj: Any) -> bytes:
    return (store.dumps_state(obj) + "\n").encode()


def _fail(rc: int, message: str, stderr: bytes, *, note: bool) -> _Verdict:
    return _Verdict(
        _dump(failure_snapshot(rc, message, stderr)),
        ok=False,
        error=message,
        note=message if note else None,
    )


# ------------------------------------------------------------------ runs


@dataclass(eq=False)
class _Run:
    name: str
    proc: subprocess.Popen[bytes]
    started: float  # ctx clock, for the reported duration
    deadline: float | None  # OS monotonic clock
    pidfd: int | None
    pipes: dict[int, IO[bytes]] = field(default_factory=dict)
    out: bytearray = field(default_factory=bytearray)
    out_seen: int = 0
    err: bytearray = field(default_factory=bytearray)
    returncode: int | None = None
    exited_at: float | None = None
    killed_at: float | None = None
    why: str | None = None  # timeout | oversize | orphan | lost
    token: str = ""  # its containment marker

    @property
    def done(self) -> bool:
        return self.returncode is not None and not self.pipes


class _Pool:
    """One selector over every sensor's pipes (and pidfds): no thread per sensor."""

    def __init__(self, cap: int, clock: Clock, timeout: int) -> None:
        self.cap = cap
        self.timeout = timeout
        self.clock = clock
        self.sel = selectors.DefaultSelector()
        self.live: list[_Run] = []

    def add(self, run: _Run) -> None:
        for f in (run.proc.stdout, run.proc.stderr):
            assert f is not None
            fd = f.fileno()
            os.set_blocking(fd, False)
            run.pipes[fd] = f
            self.sel.register(fd, selectors.EVENT_READ, run)
        if run.pidfd is not None:
            self.sel.register(run.pidfd, selectors.EVENT_READ, run)
        self.live.append(run)

    def pause(self, secs: float) -> None:
        """Wait a moment (used only while none of ours is running: nothing to read)."""
        self.sel.select(secs)

    def finished(self) -> Iterator[_Run]:
        """Yield each run as it completes."""
        while self.live:
            now = self.clock.monotonic()
            wait: float | None = None
            for run in list(self.live):
                step = self._tend(run, now)
                if run.done:
                    self._forget(run)
                    self.live.remove(run)
                    yield run
                elif step is not None:
                    wait = step if wait is None else min(wait, step)
            if not self.live:
                break
            for key, _ in self.sel.select(wait):
                run = key.data
                if key.fd == run.pidfd:
                    self._reap(run)
                    if run.returncode is None:
                        self._close_pidfd(run)  # should not happen: fall back to polling
                elif key.fd in run.pipes:
                    self._read(run, key.fd)

    def _tend(self, run: _Run, now: float) -> float | None:
        """Apply timers to one run; the seconds until its next timer, or None."""
        if run.returncode is None and (run.pidfd is None or run.killed_at is not None):
            self._reap(run)
        if run.returncode is not None:
            if not run.pipes:
                return None
            assert run.exited_at is not None
            end = run.exited_at + GRACE_SECS
            if now >= end:
                self.kill(run, "orphan")
                return None
            return end - now
        if run.killed_at is not None:
            give_up = run.killed_at + KILL_WAIT_SECS
            if now >= give_up:
                run.why = run.why or "lost"
                run.returncode = -signal.SIGKILL
                return None
            return min(POLL_SECS, give_up - now)
        if run.deadline is not None and now >= run.deadline:
            self.kill(run, "timeout")
            return POLL_SECS
        step = run.deadline - now if run.deadline is not None else None
        if run.pidfd is None:
            step = POLL_SECS if step is None else min(step, POLL_SECS)
        return step

    def _reap(self, run: _Run) -> None:
        rc = run.proc.poll()
        if rc is None:
            return
        run.returncode = rc
        run.exited_at = self.clock.monotonic()
        self._close_pidfd(run)

    def _read(self, run: _Run, fd: int) -> int:
        """Read one chunk: its size, 0 once the pipe is finished, -1 when nothing is ready."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return -1
        except OSError:
            data = b""
        if not data:
            self._close_pipe(run, fd)
            return 0
        if run.pipes[fd] is run.proc.stderr:
            run.err += data
            if len(run.err) > ERR_KEEP:
                del run.err[:-ERR_KEEP]
            return len(data)
        run.out_seen += len(data)
        if self.cap and run.out_seen > self.cap:
            run.out.clear()  # a flood must fill neither memory nor disk
            if run.killed_at is None:
                self.kill(run, "oversize")
        else:
            run.out += data
        return len(data)

    def kill(self, run: _Run, why: str) -> None:
        """SIGKILL the whole group, keep what is already in the pipes, stop reading."""
        if run.why is None:
            run.why = why
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        if run.killed_at is None:
            run.killed_at = self.clock.monotonic()
        for fd in list(run.pipes):
            for _ in range(16):  # bounded: a writer that escaped the group may never stop
                if fd not in run.pipes or self._read(run, fd) <= 0:
                    break
            self._close_pipe(run, fd)

    def _close_pipe(self, run: _Run, fd: int) -> None:
        f = run.pipes.pop(fd, None)
        if f is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fd)
        f.close()

    def _close_pidfd(self, run: _Run) -> None:
        if run.pidfd is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(run.pidfd)
        os.close(run.pidfd)
        run.pidfd = None

    def _forget(self, run: _Run) -> None:
        for fd in list(run.pipes):
            self._close_pipe(run, fd)
        self._close_pidfd(run)

    def abandon(self) -> None:
        """On the way out (an interrupt): no sensor outlives the beat."""
        for run in self.live:
            if run.returncode is None:
                self.kill(run, "lost")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.proc.wait(timeout=KILL_WAIT_SECS)
            self._forget(run)
        self.live.clear()
        self.sel.close()


def _argv(script: Path) -> list[str]:
    """A script without a #! line runs under bash, as a shell would run it (no ENOEXEC)."""
    try:
        with store.open_regular(script) as f:
            head = f.read(2)
    except OSError:
        head = b"#!"
    return [str(script)] if head == b"#!" else ["bash", str(script)]


def _deadline(clock: Clock, timeout: int) -> float | None:
    # the injected clock's monotonic time runs for real even in tests, so deadlines expire
    return clock.monotonic() + timeout if timeout > 0 else None


def _open_pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd = opener(pid)
    except OSError:
        return None
    assert isinstance(fd, int)
    return fd


def _judge(run: _Run, timeout: int, cap: int, left: int = 0) -> _Verdict:
    err = bytes(run.err)
    if run.why == "timeout":
        msg = (
            f"sensor timed out after {timeout}s and was killed; make it faster or raise "
            "LOOOP_SENSOR_TIMEOUT (0 disables the timeout)"
        )
        return _fail(EXIT_TIMEOUT, msg, err, note=True)
    if run.why == "oversize":
        snap = oversize_snapshot(cap, run.out_seen)
        msg = f"output over the {cap}-byte cap (LOOOP_SENSOR_MAX_BYTES)"
        return _Verdict(_dump(snap), ok=False, error=msg, note=snap["detail"]["message"])
    assert run.returncode is not None
    rc = _exit_code(run.returncode)
    if run.why == "lost":
        msg = "sensor could not be stopped after SIGKILL; check the script for stuck I/O"
        return _fail(rc, msg, err, note=True)
    if rc != 0:
        if run.returncode < 0:
            sig = -run.returncode
            try:
                how = f"killed by {signal.Signals(sig).name} (exit {rc})"
            except ValueError:
                how = f"killed by signal {sig} (exit {rc})"
        else:
            how = f"exited with code {rc}"
        msg = f"sensor {how}; fix the script or its environment"
        last = _one_line(err.decode("utf-8", "replace"))
        return _Verdict(
            _dump(failure_snapshot(rc, msg, err)),
            ok=False,
            error=f"{how}: {last}" if last else how,
        )
    notes = []
    if run.why == "orphan":
        notes.append(
            "the script exited but a background process kept its output open, so the "
            "group was killed; send background output elsewhere (cmd >/dev/null 2>&1 &)"
        )
    if left:
        notes.append(
            f"{left} background process(es) the script left behind were killed when it "
            "ended; a sensor must not start daemons (nothing it starts outlives it)"
        )
    note = "\n".join(notes) or None
    body = parse_output(bytes(run.out))
    if body is None:
        snap = not_json_snapshot(bytes(run.out))
        msg = snap["detail"]["message"]
        return _Verdict(_dump(snap), ok=False, error=msg, note=msg)
    return _Verdict(body, ok=True, note=note)


# ------------------------------------------------------------------ publishing


def _publish(ctx: Ctx, name: str, started: float, verdict: _Verdict, stderr: bytes) -> Reading:
    """Rename the snapshot into place; the .err file exists only when it has something."""
    secs = round(max(0.0, ctx.clock.monotonic() - started), 3)
    snaps = ctx.paths.snapshots
    err = stderr
    if verdict.note:
        if err and not err.endswith(b"\n"):
            err += b"\n"
        err += f"looop: {verdict.note}\n".encode()
    try:
        store.atomic_write(snaps / f"{name}.json", verdict.body)
    except OSError as e:
        why = f"cannot write snapshots/{name}.json: {e.strerror or e}"
        return Reading(name, False, secs, error=why, unrecorded=True)
    try:
        if err:
            store.atomic_write(snaps / f"{name}.err", err)
        else:
            store.remove(snaps / f"{name}.err")
    except OSError:
        pass  # the stderr tail is a courtesy; the snapshot itself is in place
    return Reading(name, verdict.ok, secs, error=verdict.error)


def _cached(ctx: Ctx, script: Path, name: str) -> Reading | None:
    """The previous snapshot, when the script's interval says it is still fresh."""
    every = interval_of(script)
    if not every:
        return None
    snap = ctx.paths.snapshots / f"{name}.json"
    try:
        snap_mtime = snap.stat().st_mtime
        if script.stat().st_mtime > snap_mtime:
            return None  # an edited script bypasses the window
        raw = snap.read_bytes()
    except OSError:
        return None
    age = ctx.clock.now() - snap_mtime
    if not -1.0 < age < every:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        value = None
    if is_error_snapshot(value):
        detail = value.get("detail")
        msg = detail.get("message") if isinstance(detail, dict) else None
        error = str(msg) if msg else "previous run failed"
        return Reading(name, False, 0.0, cached=True, error=error)
    return Reading(name, True, 0.0, cached=True)


def _fd_budget() -> int:
    """How many sensors may run at once: the open-file soft limit, less what is already
    open and some headroom, divided by what one running sensor holds (two pipes, a pidfd)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONCURRENT
    try:
        in_use = len(os.listdir("/proc/self/fd")) - 1  # less the one listing it
    except OSError:
        try:
            in_use = len(os.listdir("/dev/fd")) - 1
        except OSError:
            in_use = FD_HEADROOM
    free = soft - max(in_use, 0) - FD_HEADROOM
    return max(1, min(MAX_CONCURRENT, free // FDS_PER_SENSOR))


def _emfile(e: OSError) -> bool:
    return e.errno in (errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM)


def _spawn_error(rel: str, e: OSError) -> str:
    """The real cause of a failed start, with the remedy that fits it."""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOENT, errno.ENOEXEC):
        return (
            f"{rel} could not start ({why}); give it a #! line naming an installed "
            "interpreter, e.g. #!/bin/sh"
        )
    if _emfile(e):
        return (
            f"{rel} could not start ({why}) even with no other sensor running; raise the "
            "open-file or process limit of looop (ulimit -n / ulimit -u)"
        )
    return f"{rel} could not start ({why}); check the script's permissions and interpreter"


def _start(
    ctx: Ctx, script: Path, env: dict[str, str], pool: _Pool, contain: Containment
) -> OSError | None:
    """Start one sensor into the pool; the OSError when the OS refused."""
    token = contain.token()
    started = ctx.clock.monotonic()  # its timeout counts from its own start
    try:
        proc = subprocess.Popen(
            _argv(script),
            cwd=ctx.paths.data,
            env=contain.env(env, token),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        return e
    contain.started(token, proc.pid)
    name = snapshot_name(script)
    run = _Run(name, proc, started, _deadline(ctx.clock, pool.timeout), _open_pidfd(proc.pid))
    run.token = token
    pool.add(run)
    return None


def run_user_sensors(ctx: Ctx, knobs: Knobs) -> list[Reading]:
    """Run every sensor, as many at once as the open-file limit allows (normally all): the
    beat costs the slowest one. Nothing a sensor started outlives it."""
    scripts = sensor_scripts(ctx.paths)
    if not scripts:
        return []
    timeout = knobs.num("sensor_timeout")
    cap = knobs.num("sensor_max_bytes")
    env = ctx.child_env()
    out: dict[str, Reading] = {}
    pending: deque[Path] = deque()
    for script in scripts:
        name = snapshot_name(script)
        hit = _cached(ctx, script, name)
        if hit is not None:
            out[name] = hit
        elif not os.access(script, os.X_OK):
            msg = f"{ctx.paths.rel(script)} is not executable; run: chmod +x {script}"
            v = _fail(EXIT_NOT_EXECUTABLE, msg, b"", note=True)
            out[name] = _publish(ctx, name, ctx.clock.monotonic(), v, b"")
        else:
            pending.append(script)
    if not pending:
        return [out[snapshot_name(s)] for s in scripts]
    pool = _Pool(cap, ctx.clock, timeout)
    contain = Containment(ctx.clock)
    with contain:
        if not contain.active and UNCONTAINED not in ctx.warned:
            ctx.warned.add(UNCONTAINED)
            ctx.events.emit("warn", "sense.uncontained", UNCONTAINED)
        slots = _fd_budget()
        refused = 0  # starts refused in a row while nothing of ours was running
        try:
            while pending or pool.live:
                while pending and len(pool.live) < slots:
                    script = pending[0]
                    err = _start(ctx, script, env, pool, contain)
                    if err is None:
                        pending.popleft()
                        refused = 0
                        continue
                    if _emfile(err) and pool.live:
                        slots = len(pool.live)  # out of files: wait for one to finish
                        break
                    if _emfile(err) and refused < SPAWN_RETRIES:
                        refused += 1
                        pool.pause(SPAWN_RETRY_SECS)  # someone else holds them: give it a moment
                        continue
                    pending.popleft()
                    refused = 0
                    name = snapshot_name(script)
                    v = _fail(EXIT_SPAWN, _spawn_error(ctx.paths.rel(script), err), b"", note=True)
                    out[name] = _publish(ctx, name, ctx.clock.monotonic(), v, b"")
                for run in pool.finished():
                    contain.ended(run.token)
                    left = contain.sweep().get(run.token, 0)
                    verdict = _judge(run, timeout, cap, left)
                    out[run.name] = _publish(ctx, run.name, run.started, verdict, bytes(run.err))
                    if pending:
                        break  # a slot is free: start the next before waiting again
        finally:
            pool.abandon()
    return [out[snapshot_name(s)] for s in scripts]
