"""Run the tick runner once: prompt in, readable output teed to the run archive, bounded in time."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import stat
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from looop.core.context import Ctx
from looop.core.proc import Kind, classify, drain, end_group, exited, spawn, wait_exit
from looop.core.promptfile import DECISION_PLACEHOLDER, substitute_path, substitute_prompt_file
from looop.core.text import one_line
from looop.decide.streams import StreamRenderer
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.runners import program
from looop.runners.presets import PLACEHOLDER
from looop.sandbox import srt
from looop.sandbox.worker import tick_argv

MAX_LINE = 1024 * 1024  # one unterminated line is flushed at this size
TAIL_CHARS = 2048
KILL_GRACE_S = 2.0
_POLL_S = 0.1
# After the runner itself exits, a background child may still hold the pipe open:
# this many quiet polls (~1 s) and its process group is ended.
_ORPHAN_QUIET_POLLS = 10
ABANDONED = "a second Ctrl-C ended the runner; no move runs"
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


class _Output:
    """The runner's raw output, split into lines (an unterminated one is flushed at MAX_LINE),
    rendered, teed, and kept as a bounded tail of rendered lines."""

    def __init__(self, ctx: Ctx, tee: list[Path], on_line: Callable[[str], None] | None) -> None:
        self.renderer = StreamRenderer()
        self.tee = _Tee(ctx, tee)
        self.on_line = on_line
        self.rendered: deque[str] = deque()
        self.size = 0
        self.last_raw = ""
        self.last_rendered = ""
        self.buf = bytearray()

    def take(self, chunk: bytes) -> None:
        buf = self.buf
        buf.extend(chunk)
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            self._line(line)
        while len(buf) >= MAX_LINE:
            line = bytes(buf[:MAX_LINE])
            del buf[:MAX_LINE]
            self._line(line)

    def flush(self) -> None:
        if self.buf:
            self._line(bytes(self.buf))
            self.buf.clear()

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        if line.strip():
            self.last_raw = line.strip()
        if self.on_line is not None:
            self.on_line(line)
        for text in self.renderer.feed(line):
            self.tee.write(text)
            if text.strip():
                self.last_rendered = text.strip()
            self.rendered.append(text)
            self.size += len(text) + 1
            while self.size > TAIL_CHARS * 2 and len(self.rendered) > 1:
                self.size -= len(self.rendered.popleft()) + 1

    def tail(self) -> str:
        return "\n".join(self.rendered)[-TAIL_CHARS:]


def _pump(
    proc: subprocess.Popen[bytes],
    fd: int,
    deadline: float | None,
    clock: Clock,
    take: Callable[[bytes], None],
    abandon: threading.Event,
) -> bool:
    """Read the merged output until EOF, or until the runner has exited and stayed quiet
    (a background child may hold the pipe), then wait for the runner itself; True when the
    deadline (or an abandon) came first."""

    def expired() -> bool:
        return abandon.is_set() or (deadline is not None and clock.monotonic() >= deadline)

    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        quiet_after_exit = 0
        while True:
            if expired():
                return True
            left = _POLL_S if deadline is None else deadline - clock.monotonic()
            if not sel.select(max(0.0, min(_POLL_S, left))):
                if exited(proc):
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
    finally:
        sel.close()
    return not wait_exit(proc, deadline, clock)


def _failure(
    command: str, timeout_s: float, code: int | None, timed_out: bool, out: _Output
) -> str | None:
    """The one-line cause of a failed run (the stream's own error on a clean exit), or None."""
    ended = classify(code, timed_out=timed_out)
    if ended.kind is Kind.TIMEOUT:
        return f"runner timed out after {timeout_s:g}s (LOOOP_TICK_TIMEOUT_SECS)"
    if ended.ok:
        return out.renderer.error
    if ended.kind is Kind.NOT_FOUND:
        missing = _NOT_FOUND.search(out.last_raw)
        name = missing.group(1) if missing else program(command) or command.strip()
        return f"runner command not found: {name} — install it or run `looop init` to pick another"
    cause = out.renderer.error or out.last_rendered or out.last_raw
    what = (
        f"runner killed by signal {ended.signal}"
        if ended.kind is Kind.SIGNAL
        else f"runner exited {ended.code}"
    )
    return f"{what}: {one_line(cause, 200)}" if cause else f"{what} (no output)"


def run_runner(
    ctx: Ctx,
    command: str,
    prompt_path: Path,
    tee: list[Path],
    timeout_s: float,
    on_line: Callable[[str], None] | None = None,
    sandbox: SandboxPolicy | None = None,
    runner: str = "",
) -> RunResult:
    """Run `command` under bash where its decision goes (Paths.decision_file, also named by
    $LOOOP_DECISION and {{decision_file}}): the data dir, or a sandboxed decider's room, so
    an agent CLI writes its `.decision.json` in its own workspace. The prompt goes on stdin
    unless the command names {{prompt_file}}. Never raises for a runner's misbehaviour: the
    RunResult says it. sandbox: the runner's policy; on, the command runs inside srt
    (sandbox/worker.tick_argv)."""
    clock = ctx.clock
    start = clock.monotonic()
    out = _Output(ctx, tee, on_line)
    if ctx.interrupt.abandon.is_set():  # a retry after the beat was abandoned never starts
        return _result(out, clock, start, None, False, ABANDONED)
    answer = ctx.paths.decision_file(sandbox is not None and sandbox.on)
    try:
        shell_line, stdin = _shell_line(command, prompt_path, answer)
    except OSError as e:
        error = f"cannot read the prompt file {prompt_path}: {e.strerror}"
        return _result(out, clock, start, None, False, error)
    try:
        argv = ["bash", "-c", shell_line]
        env = ctx.child_env()
        env["LOOOP_DECISION"] = str(answer)
        if sandbox is not None and sandbox.on:
            argv = tick_argv(ctx, runner, sandbox, shell_line, env, prompt_path.parent)
        proc = spawn(argv, cwd=answer.parent, env=env, stdin=stdin, merge_stderr=True)
    except LooopError as e:  # the sandbox cannot run here: said, never run unsandboxed
        return _result(out, clock, start, None, False, str(e))
    except OSError as e:
        return _result(
            out, clock, start, None, False, f"cannot start the runner: {e.strerror or e}"
        )
    finally:
        if not isinstance(stdin, int):
            stdin.close()

    timed_out = _read_to_end(proc, out, start, timeout_s, ctx)
    if ctx.interrupt.abandon.is_set():
        return _result(out, clock, start, proc.returncode, False, ABANDONED)
    failure = _failure(command, timeout_s, proc.returncode, timed_out, out)
    if failure is not None and sandbox is not None and sandbox.on:
        failure = srt.explain_denied(failure, out.tail(), f"the tick runner '{runner}'")
    return _result(out, clock, start, proc.returncode, timed_out, failure)


def _shell_line(command: str, prompt_path: Path, answer: Path) -> tuple[str, int | BinaryIO]:
    """The bash line, {{decision_file}} filled in, and its stdin: the prompt file unless the
    command names {{prompt_file}}. Raises OSError when the prompt file cannot be read."""
    command = substitute_path(command, DECISION_PLACEHOLDER, answer)
    if PLACEHOLDER in command:
        return substitute_prompt_file(command, prompt_path), subprocess.DEVNULL
    return command, prompt_path.open("rb")


def _read_to_end(
    proc: subprocess.Popen[bytes], out: _Output, start: float, timeout_s: float, ctx: Ctx
) -> bool:
    """Read the runner's output until EOF, its deadline or an abandon; True when they ended it."""
    assert proc.stdout is not None
    clock = ctx.clock
    fd = proc.stdout.fileno()
    deadline = start + timeout_s if timeout_s > 0 else None
    try:
        timed_out = _pump(proc, fd, deadline, clock, out.take, ctx.interrupt.abandon)
    finally:
        # However the reading ended (EOF, deadline, an on_line that raised), nothing of
        # this run outlives it.
        end_group(proc, KILL_GRACE_S, clock)
        rest = drain(fd, MAX_LINE * 4)
        proc.stdout.close()
    out.take(rest)
    out.flush()
    return timed_out


def _result(
    out: _Output,
    clock: Clock,
    start: float,
    code: int | None,
    timed_out: bool,
    error: str | None,
) -> RunResult:
    """The run as data; a failure's reason is the tee's last line."""
    if error is not None and (timed_out or code != 0):
        out.tee.write(f"✗ {error}")
    out.tee.close()
    return RunResult(code, timed_out, max(0.0, clock.monotonic() - start), error, out.tail())
