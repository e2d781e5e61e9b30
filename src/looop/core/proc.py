"""Child processes, one way: spawn in a new session (optionally marked for containment), keep
bounded tails, kill the process group, and say how a run ended with a pure classifier.

Two shapes of loop use it. `Pool` (core/pool.py) runs any number of processes at once in ONE
selector over their pipes and pidfds (sensors: many; run_shell: one); the tick runner keeps
its own short loop over one merged pipe (it reads lines, ends its group with SIGTERM before
SIGKILL and keeps its leader unreaped until then) but shares `spawn`, `end_group`, `drain`
and `classify`.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from looop.core.procstat import await_pid, kill_group
from looop.home.clock import Clock, SystemClock

if TYPE_CHECKING:
    from looop.core.procs import Containment

CHUNK = 65536
NAP_SECS = 0.02  # end_group's exit polling without a pidfd


# ------------------------------------------------------------------ how a run ended


class Kind(enum.StrEnum):
    OK = "ok"
    EXIT = "exit"  # a non-zero exit code other than the two below
    NOT_EXECUTABLE = "not-executable"  # 126, the shell's "cannot execute"
    NOT_FOUND = "not-found"  # 127, the shell's "command not found"
    SIGNAL = "signal"
    TIMEOUT = "timeout"
    OVERSIZE = "oversize"
    LOST = "lost"  # killed, yet never seen to exit (or never seen at all)


class Exit(NamedTuple):
    kind: Kind
    code: int | None  # shell-style: 128+N after death by signal N; None when it never exited
    signal: int | None = None  # the signal that ended it, if one did

    @property
    def ok(self) -> bool:
        return self.kind is Kind.OK

    @property
    def signal_name(self) -> str | None:
        """SIGKILL, SIGTERM…; None without a signal or for a number the OS does not name."""
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return None


def classify(
    returncode: int | None, *, timed_out: bool = False, oversize: bool = False, lost: bool = False
) -> Exit:
    """How a run ended, from what its loop saw: pure, so every message has one source.

    `returncode` is Popen's (negative for death by signal). Why looop stopped it wins over
    how it died: a timed-out run killed by SIGKILL is a timeout, not a signal.
    """
    sig = -returncode if returncode is not None and returncode < 0 else None
    code = None if returncode is None else (128 + sig if sig is not None else returncode)
    if timed_out:
        return Exit(Kind.TIMEOUT, code, sig)
    if oversize:
        return Exit(Kind.OVERSIZE, code, sig)
    if lost or code is None:
        return Exit(Kind.LOST, code, sig)
    if sig is not None:
        return Exit(Kind.SIGNAL, code, sig)
    kinds = {0: Kind.OK, 126: Kind.NOT_EXECUTABLE, 127: Kind.NOT_FOUND}
    return Exit(kinds.get(code, Kind.EXIT), code)


# ------------------------------------------------------------------ output


class Tail:
    """The last `keep` bytes of a stream (None keeps all), trimmed in amortised steps so a
    chatty process costs neither unbounded memory nor a copy per chunk."""

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.buf = bytearray()
        self.seen = 0  # every byte ever added, kept or not

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        self.buf += chunk
        if self.keep is not None and len(self.buf) > 2 * self.keep:
            del self.buf[: -self.keep]

    def clear(self) -> None:
        self.buf.clear()

    def data(self) -> bytes:
        return bytes(self.buf if self.keep is None else self.buf[-self.keep :])

    def text(self, chars: int) -> str:
        return self.data().decode("utf-8", "replace")[-chars:]


def drain(fd: int, limit: int) -> bytes:
    """What is already in a non-blocking pipe (up to about `limit` bytes), without waiting
    for writers that escaped the group."""
    got = bytearray()
    while len(got) < limit:
        try:
            chunk = os.read(fd, CHUNK)
        except OSError:  # BlockingIOError included: nothing more is there now
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


# ------------------------------------------------------------------ processes


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: int | BinaryIO | None = None,
    merge_stderr: bool = False,
    contain: Containment | None = None,
    token: str = "",
) -> subprocess.Popen[bytes]:
    """Start argv leading a new session (so one killpg reaches all it starts), its output on
    non-blocking pipes; with `contain`, marked with `token` and registered as started.
    Raises OSError when the OS refuses. stdin: /dev/null unless given."""
    if contain is not None:
        contain.enter(token)
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=contain.env(env, token) if contain is not None else dict(env),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        if contain is not None:
            contain.leave(token)
    if contain is not None:
        contain.started(token, proc.pid)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            os.set_blocking(f.fileno(), False)
    return proc


class Proc(Protocol):
    """What the loops need of a started process: a Popen, or a `Child` from `Spawner`."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    @property
    def stderr(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...


class Child:
    """A process started by `Spawner` (posix_spawn): Popen's pid, pipes, poll and wait."""

    def __init__(self, pid: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: IO[bytes] | None = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.stderr: IO[bytes] | None = open(stderr, "rb", buffering=0)  # noqa: SIM115

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # reaped by someone else (containment never reaps a live run): the status is
                # lost, so it reads as a failure rather than Popen's silent 0
                self.returncode = 255
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Reap it; TimeoutError when `timeout` seconds pass first (None waits forever)."""
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 255
            return self.returncode
        clock = SystemClock()
        until = clock.monotonic() + timeout
        if not await_pid(self.pid, lambda: self.poll() is not None, clock, until, NAP_SECS):
            raise TimeoutError(f"pid {self.pid} still running after {timeout}s")
        return self.wait()  # reaped: its code


class Spawner:
    """Starts many short processes the way `spawn` does (new session, stdin /dev/null, two
    non-blocking pipes, containment marker), through os.posix_spawn where that is safe: no
    error pipe to read back, no sweep closing every descriptor, no Popen object, so a beat
    of a hundred sensors costs about what a shell running them costs.

    posix_spawn has no working-directory action, so the spawn briefly changes ours: only
    while no other Python thread runs (nothing else can see it), and put back at once.
    Anything else (other threads, a command looked up on PATH, our own stdio closed, no
    posix_spawn) goes through `spawn`. Made once per batch: it lists, once, the inheritable
    descriptors we hold, for the child to close as Popen's close_fds would. It holds no
    descriptor between spawns (a beat short of files must still be able to write)."""

    def __init__(self) -> None:
        self.ok = hasattr(os, "posix_spawn") and sys.platform.startswith("linux")
        self.leaks: list[int] = []
        if self.ok:
            self._survey()

    def _survey(self) -> None:
        try:
            fds = [int(n) for n in os.listdir("/proc/self/fd")]
        except OSError:
            self.ok = False
            return
        for fd in fds:
            if fd > 2:
                with contextlib.suppress(OSError):
                    if os.get_inheritable(fd):
                        self.leaks.append(fd)
        # our own stdio closed: a pipe could land on 0-2, where dup2 would not clear CLOEXEC
        for fd in (0, 1, 2):
            try:
                os.fstat(fd)
            except OSError:
                self.ok = False

    def _usable(self, argv: Sequence[str]) -> bool:
        if not self.ok or "/" not in argv[0]:
            return False
        threading = sys.modules.get("threading")  # not imported: no thread can be running
        return threading is None or threading.active_count() <= 1

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        contain: Containment,
        token: str,
    ) -> Proc:
        if not self._usable(argv):
            return spawn(argv, cwd=cwd, env=env, contain=contain, token=token)
        contain.enter(token)
        try:
            proc = self._posix_spawn(list(argv), cwd, contain.env(env, token))
        finally:
            contain.leave(token)
        if proc is None:
            return spawn(argv, cwd=cwd, env=env, contain=contain, token=token)
        contain.started(token, proc.pid)
        return proc

    def _posix_spawn(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Child | None:
        try:
            # O_PATH: no read permission is needed to come back to our own directory
            here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # gone or unreachable: Popen copes
        fds = [here]
        try:
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(null)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            fds += [out_r, out_w]
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds += [err_r, err_w]
            actions: list[tuple[int, ...]] = [
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ]
            actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in self.leaks]
            os.chdir(cwd)
            try:
                pid = os.posix_spawn(
                    argv[0],
                    argv,
                    env,
                    file_actions=actions,
                    setsid=True,
                    setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # as Popen restores them
                )
            finally:
                os.fchdir(here)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (here, null, out_w, err_w):
            os.close(fd)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
        return Child(pid, out_r, err_r)


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the leader exited? Checked without reaping it: while it is an unreaped zombie its
    pid, which is also the group id, cannot be handed to another process."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_unreaped(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is None:  # once reaped, the group id may belong to someone else
        kill_group(proc.pid, sig)


def wait_exit(proc: subprocess.Popen[bytes], until: float | None, clock: Clock) -> bool:
    """Wait, without reaping, until the leader exits (True) or `until` passes (False);
    until=None waits as long as it takes."""
    return await_pid(proc.pid, lambda: exited(proc), clock, until, NAP_SECS)


def end_group(proc: subprocess.Popen[bytes], grace: float, clock: Clock) -> None:
    """SIGTERM the leader's whole group, SIGKILL whatever is left once the leader exits or
    the grace runs out, then reap the leader."""
    _signal_unreaped(proc, signal.SIGTERM)
    wait_exit(proc, clock.monotonic() + grace, clock)
    _signal_unreaped(proc, signal.SIGKILL)  # members that ignored SIGTERM or outlived the leader
    proc.wait()
