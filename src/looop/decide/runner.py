"""Run the tick runner once: prompt in, readable output teed to the run archive, bounded in time."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import signal
import stat
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from looop.core.config import PLACEHOLDER, substitute_prompt_file
from looop.core.context import Ctx
from looop.decide.streams import StreamRenderer

MAX_LINE = 1024 * 1024  # one unterminated line is flushed at this size
TAIL_CHARS = 2048
KILL_GRACE_S = 2.0
_POLL_S = 0.1
_NAP_S = 0.02
# After the runner itself exits, a background child may still hold the pipe open:
# this many quiet polls (~1 s) and its process group is ended.
_ORPHAN_QUIET_POLLS = 10
_NOT_FOUND = re.compile(r"([^\s:]+): command not found")


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool
    secs: float
    error: str | None  # one-line cause when the run failed, else None
    tail: str  # last ~2 KB of rendered output

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _clip(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for w in words:
        if "=" not in w.split("/")[0]:  # skip leading VAR=value assignments
            return w
    return words[0] if words else command.strip()


def _secs_text(timeout_s: float) -> str:
    return f"{timeout_s:g}"


class _Tee:
    """The rendered lines, stamped [HH:MM:SS], into every tee file; a file that fails is dropped."""

    def __init__(self, ctx: Ctx, targets: list[Path]) -> None:
        self.ctx = ctx
        self.files: list[IO[str]] = []
        for path in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # non-blocking: a FIFO standing in for tick.log must not hang the beat
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC
                fd = os.open(path, flags, 0o644)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    continue
                self.files.append(os.fdopen(fd, "w", encoding="utf-8", errors="replace"))
            except OSError:
                continue

    def write(self, text: str) -> None:
        if not self.files:
            return
        line = f"[{self.ctx.clock.local().strftime('%H:%M:%S')}] {text}\n"
        for f in list(self.files):
            try:
                f.write(line)
                f.flush()
            except OSError:
                self.files.remove(f)
                with contextlib.suppress(OSError):
                    f.close()

    def close(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()
        self.files = []


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the leader exited? Checked without reaping it: while it is an unreaped zombie its
    pid, which is also the group id, cannot be handed to another process."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is None:  # once reaped, the group id may belong to someone else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the runner's whole process group, SIGKILL whatever is left after the grace,
    then reap the leader."""
    _signal_group(proc, signal.SIGTERM)
    for _ in range(int(KILL_GRACE_S / _NAP_S)):
        if _exited(proc):
            break
        time.sleep(_NAP_S)
    _signal_group(proc, signal.SIGKILL)  # members that ignored SIGTERM or outlived the leader
    proc.wait()


def _drain(fd: int) -> bytes:
    """What is already in the pipe, without waiting for writers that escaped the group."""
    got = bytearray()
    while len(got) < MAX_LINE * 4:  # a chatty escapee must not keep us here
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


def run_runner(
    ctx: Ctx,
    command: str,
    prompt_path: Path,
    tee: list[Path],
    timeout_s: float,
    on_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Run `command` under bash in the data dir; the prompt goes on stdin unless the command
    names {{prompt_file}}. Never raises for a runner's misbehaviour: the RunResult says it."""
    clock = ctx.clock
    start = clock.monotonic()
    renderer = StreamRenderer()
    out = _Tee(ctx, tee)
    rendered_tail: deque[str] = deque()
    tail_size = 0
    last_raw = ""
    last_rendered = ""

    def handle(raw: bytes) -> None:
        nonlocal tail_size, last_raw, last_rendered
        line = raw.decode("utf-8", "replace")
        if line.strip():
            last_raw = line.strip()
        if on_line is not None:
            on_line(line)
        for text in renderer.feed(line):
            out.write(text)
            if text.strip():
                last_rendered = text.strip()
            rendered_tail.append(text)
            tail_size += len(text) + 1
            while tail_size > TAIL_CHARS * 2 and len(rendered_tail) > 1:
                tail_size -= len(rendered_tail.popleft()) + 1

    def result(code: int | None, timed_out: bool, error: str | None) -> RunResult:
        if error is not None and (timed_out or code != 0):
            out.write(f"✗ {error}")
        out.close()
        tail = "\n".join(rendered_tail)[-TAIL_CHARS:]
        return RunResult(code, timed_out, max(0.0, clock.monotonic() - start), error, tail)

    stdin: int | BinaryIO
    if PLACEHOLDER in command:
        shell_line = substitute_prompt_file(command, prompt_path)
        stdin = subprocess.DEVNULL
    else:
        shell_line = command
        try:
            stdin = prompt_path.open("rb")
        except OSError as e:
            return result(None, False, f"cannot read the prompt file {prompt_path}: {e.strerror}")

    try:
        proc = subprocess.Popen(
            ["bash", "-c", shell_line],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ctx.paths.data,
            env=ctx.child_env(),
            start_new_session=True,
        )
    except OSError as e:
        return result(None, False, f"cannot start the runner: {e.strerror or e}")
    finally:
        if not isinstance(stdin, int):
            stdin.close()

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    deadline = start + timeout_s if timeout_s > 0 else None
    timed_out = False
    buf = bytearray()

    def take(chunk: bytes) -> None:
        buf.extend(chunk)
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            handle(line)
        while len(buf) >= MAX_LINE:
            line = bytes(buf[:MAX_LINE])
            del buf[:MAX_LINE]
            handle(line)

    def expired() -> bool:
        return deadline is not None and clock.monotonic() >= deadline

    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        quiet_after_exit = 0
        while True:
            if expired():
                timed_out = True
                break
            wait = (
                _POLL_S
                if deadline is None
                else max(0.0, min(_POLL_S, deadline - clock.monotonic()))
            )
            if not sel.select(wait):
                # A background child may hold the pipe open after the runner itself exited.
                if _exited(proc):
                    quiet_after_exit += 1
                    if quiet_after_exit >= _ORPHAN_QUIET_POLLS:
                        break
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break  # EOF: every writer is gone
            quiet_after_exit = 0
            take(chunk)
        while not timed_out and not _exited(proc):
            if expired():
                timed_out = True
                break
            time.sleep(_NAP_S)
    finally:
        sel.close()
        # However the reading ended (EOF, deadline, an on_line that raised), nothing of
        # this run outlives it.
        _end_group(proc)
        rest = _drain(fd)
        proc.stdout.close()
    take(rest)
    if buf:
        handle(bytes(buf))

    code = proc.returncode
    if timed_out:
        return result(
            code,
            True,
            f"runner timed out after {_secs_text(timeout_s)}s (LOOOP_TICK_TIMEOUT_SECS)",
        )
    if code == 0:
        return result(code, False, renderer.error)
    if code == 127:
        missing = _NOT_FOUND.search(last_raw)
        name = missing.group(1) if missing else _first_word(command)
        return result(
            code,
            False,
            f"runner command not found: {name} — install it or run `looop init` to pick another",
        )
    cause = renderer.error or last_rendered or last_raw
    what = f"runner killed by signal {-code}" if code < 0 else f"runner exited {code}"
    return result(code, False, f"{what}: {_clip(cause, 200)}" if cause else f"{what} (no output)")
