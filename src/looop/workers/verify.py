"""Post-conditions: a worker's verify command runs once, on the first beat after it died.

A worker that ran sandboxed is verified inside its own sandbox, whoever wrote the verify: it
runs the worker's code (a Makefile, a conftest.py, a script), so it gets the worker's walls and
no more (workers/boxed.verify_argv); where srt cannot run, it fails unrun. Otherwise a
decision's verify runs under shell_policy's sandbox and a human's as configured.

A worker on an SSH host is verified there, in its workspace (remote/ssh/hostverify.py),
once the home has seen it over (its record in hosts/workers/); the result comes home to the
same verify/<id>.json (remote/ssh/hostverify.run_far, handed in by the beat). A host out of
reach leaves it pending for a later beat: the host runs it once and keeps its result until it
is fetched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from looop.core import provenance
from looop.core.context import Ctx
from looop.home import store, where
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import OFF, SandboxPolicy
from looop.sandbox.worker import WorkerBox
from looop.sessions.state import Session
from looop.workers import resume
from looop.workers.errors import WorkerError


class ShellOutcome(Protocol):
    """What a verify command's run reports (act.shell.ShellResult has this shape)."""

    @property
    def exit_code(self) -> int | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


# The runner is handed in by the beat (act.shell.run_shell): workers sit below act. Its last
# argument is the sandbox to run in: shell_policy's, a worker's own, or None: none.
# The last, where an unboxed verify runs: the worker's own folder.
RunShell = Callable[
    [Ctx, str, float, "SandboxPolicy | WorkerBox | None", "Path | None"], ShellOutcome
]
# The verifies of workers away from home, handed in by the beat too (remote/ssh/hostverify.run_far):
# (ctx, [(id, command)] with no session here, timeout, seconds left, run_shell's sandbox) ->
# the ids it recorded.
RunFar = Callable[[Ctx, list[tuple[str, str]], float, float, "SandboxPolicy | None"], list[str]]
_UNREAD = (
    "not run: a decision's verify runs only under shell_policy's sandbox, and the config "
    "cannot be read; fix the config"
)
_UNREAD_OFF = (
    "not run: a decision's verify the tripwire cannot read was allowed only sandboxed, and "
    "shell_policy's sandbox is off now"
)


def confined(ctx: Ctx, wid: str, cmd: str, sandbox: SandboxPolicy | None) -> bool:
    """Does this verify run inside run_shell's sandbox? Every one but a human's (core/
    provenance: given at `looop worker start --verify` and unchanged) when it is on."""
    if sandbox is not None and not sandbox.on:
        return False
    return not provenance.by_human(ctx.paths, provenance.VERIFY, wid, store.encode(cmd))


def _worker_box(ctx: Ctx, wid: str) -> WorkerBox | None:
    """The sandbox the worker ran in, if it ran in one: its srt settings are there (a
    sandboxed start writes them) or its start record says so; a record that cannot be read
    counts as sandboxed (fail closed: the box then refuses in one line)."""
    ran = where.sandboxed(str(ctx.paths.data), wid)
    if not ran and resume.record_path(ctx, wid).exists():
        try:
            rec = resume.read_record(ctx, wid)
            ran = rec is None or rec.sandbox.on
        except WorkerError:
            ran = True
    return WorkerBox(wid) if ran else None


def _folder(ctx: Ctx, wid: str) -> Path | None:
    """The folder the worker worked in (its worktree or room) while it is still there; None:
    the data dir."""
    try:
        rec = resume.read_record(ctx, wid)
    except WorkerError:
        return None
    if rec is None or not os.path.isdir(rec.cwd):
        return None
    return Path(rec.cwd)


def run_pending_verifies(
    ctx: Ctx,
    knobs: Knobs,
    sessions: list[Session],
    run: RunShell,
    sandbox: SandboxPolicy | None = OFF,
    run_far: RunFar | None = None,
) -> list[str]:
    """Run verify/<id>.cmd for dead workers without a result yet; the rest wait for the next
    beat once this beat's budget is spent. Returns the ids verified. `sandbox`: run_shell's
    (shell_policy.sandbox), under which a decision's verify runs; None: the config could not
    be read, and a decision's verify fails unrun. `run_far`: the verifies of workers on SSH
    hosts (remote/ssh/hostverify.run_far); None: those stay pending."""
    done: list[str] = []
    if not ctx.paths.verify.is_dir():
        return done
    dead = {s.id for s in sessions if not s.alive}
    here = {s.id for s in sessions}
    started = ctx.clock.monotonic()
    timeout = float(knobs.num("verify_timeout_secs"))
    budget = float(knobs.num("verify_beat_budget_secs"))
    far: list[tuple[str, str]] = []  # no session here: maybe a worker on a host
    for cmd_file in sorted(ctx.paths.verify.glob("*.cmd")):
        wid = cmd_file.stem
        if (ctx.paths.verify / f"{wid}.json").exists():
            continue
        if wid not in dead:
            if wid not in here:
                far.append((wid, (store.read_text(cmd_file) or "").strip()))
            continue
        if ctx.clock.monotonic() - started > budget:
            break
        cmd = (store.read_text(cmd_file) or "").strip()
        inside: SandboxPolicy | WorkerBox | None = _worker_box(ctx, wid)
        if inside is None:
            policy = sandbox if confined(ctx, wid, cmd, sandbox) else OFF
            if policy is None or (
                not policy.on
                and provenance.is_unread(ctx.paths, provenance.VERIFY, wid, store.encode(cmd))
            ):
                why = _UNREAD if policy is None else _UNREAD_OFF
                record(ctx, wid, cmd, False, None, False, why)
                done.append(wid)
                continue
            inside = policy if policy.on else None
        try:
            r = run(ctx, cmd, timeout, inside, None if inside else _folder(ctx, wid))
        except LooopError as e:  # srt cannot run here: one line, and nothing ran
            record(ctx, wid, cmd, False, None, False, f"not run: {e}")
            done.append(wid)
            continue
        ok = r.exit_code == 0 and not r.timed_out
        out = (r.stdout + ("\n" + r.stderr if r.stderr else "")).strip()[-2000:]
        record(ctx, wid, cmd, ok, r.exit_code, r.timed_out, out)
        done.append(wid)
    if far and run_far is not None and (ctx.paths.host_workers).is_dir():
        left = budget - (ctx.clock.monotonic() - started)
        done += run_far(ctx, far, timeout, left, sandbox)
    return done


def record(
    ctx: Ctx,
    wid: str,
    cmd: str,
    ok: bool,
    exit_code: int | None,
    timed_out: bool,
    output: str,
    host: str | None = None,
) -> None:
    rec: dict[str, Any] = {
        "v": 1,
        "ts": int(ctx.clock.now()),
        "cmd": cmd,
        "pass": ok,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "output": output,
        **({"host": host} if host is not None else {}),
    }
    store.write_json(ctx.paths.verify / f"{wid}.json", rec)
    there = f" on host {host}" if host is not None else ""
    ctx.events.emit(
        "ok" if ok else "warn",
        "worker.verify",
        f"verify {wid}: {'pass' if ok else 'FAIL'}{there} ({cmd})",
        id=wid,
        passed=ok,
    )
    ctx.events.record("worker_verified", id=wid, passed=ok)
