"""run_shell: `bash -c` in the data dir with a deadline, a process-group kill, bounded output,
and no descendant outliving the command (core/procs containment)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from looop.core.context import Ctx
from looop.core.pool import Pool, Run
from looop.core.proc import Kind, Tail, spawn
from looop.core.procs import UNCONTAINED, Containment
from looop.home.sandboxpolicy import SandboxPolicy
from looop.sandbox.worker import WorkerBox, shell_argv
from looop.workers.boxed import verify_argv

TAIL_CHARS = 4000
# Enough bytes for TAIL_CHARS even if every char is 4 bytes of UTF-8.
_TAIL_BYTES = TAIL_CHARS * 4
# After bash exits, a backgrounded grandchild may keep the pipes open: stop reading then.
_EXIT_GRACE_S = 0.5


@dataclass(frozen=True)
class ShellResult:
    exit_code: int | None  # None when the deadline killed it; 128+N for death by signal N
    timed_out: bool
    secs: float
    stdout: str  # tail, last TAIL_CHARS chars
    stderr: str


def run_shell(
    ctx: Ctx,
    cmd: str,
    timeout_s: float,
    sandbox: SandboxPolicy | WorkerBox | None = None,
    cwd: Path | None = None,
) -> ShellResult:
    """Run one command; timeout_s <= 0 means no deadline. When it ends, every process it
    started ends too (daemons, setsid, double forks): the stderr tail says how many.
    `sandbox` on: the command runs inside srt (sandbox/worker.shell_argv); a WorkerBox: in
    that worker's own sandbox (a sandboxed worker's verify, workers/boxed.verify_argv);
    where srt cannot run, a LooopError says what is missing and nothing runs. `cwd`: where it
    runs unboxed (an ended worker's verify: its own folder); the data dir by default.

    Deadlines use the injected clock's monotonic time, which runs for real even in tests.
    """
    with Containment(ctx.clock) as contain:
        if not contain.active and UNCONTAINED not in ctx.warned:
            ctx.warned.add(UNCONTAINED)
            ctx.events.emit("warn", "shell.uncontained", UNCONTAINED)
        token = contain.token()
        env = ctx.child_env()
        argv = ["bash", "-c", cmd]
        if isinstance(sandbox, SandboxPolicy):
            if sandbox.on:
                argv = shell_argv(ctx, sandbox, cmd, env)
        elif sandbox is not None:
            argv, env = verify_argv(ctx, sandbox, cmd, env)
        result = _run(ctx, argv, env, timeout_s, contain, token, cwd or ctx.paths.data)
        left = contain.close().get(token, 0)
    if not left:
        return result
    note = f"looop: killed {left} background process(es) the command left running\n"
    return replace(result, stderr=(result.stderr + note)[-TAIL_CHARS:])


def _run(
    ctx: Ctx,
    argv: list[str],
    env: dict[str, str],
    timeout_s: float,
    contain: Containment,
    token: str,
    cwd: Path,
) -> ShellResult:
    started = ctx.clock.monotonic()
    deadline = started + timeout_s if timeout_s > 0 else None
    proc = spawn(argv, cwd=cwd, env=env, contain=contain, token=token)
    run = Run(proc, deadline, Tail(_TAIL_BYTES), Tail(_TAIL_BYTES), started=started)
    # One run in the pool: it ends when bash has exited and its pipes are done, or
    # _EXIT_GRACE_S after bash exits if a backgrounded grandchild still holds them (left to
    # the containment sweep, which counts it); the deadline kills the group.
    pool = Pool(ctx.clock, _EXIT_GRACE_S, kill_orphans=False)
    try:
        pool.add(run)
        for _ in pool.finished():
            pass
    finally:
        pool.abandon()
    ended = run.exit()
    timed_out = ended.kind is Kind.TIMEOUT
    return ShellResult(
        exit_code=None if timed_out else ended.code,
        timed_out=timed_out,
        secs=round(ctx.clock.monotonic() - started, 3),
        stdout=run.out.text(TAIL_CHARS),
        stderr=run.err.text(TAIL_CHARS),
    )
