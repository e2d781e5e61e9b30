"""The work behind the steering verbs, without click: a body from an argument or stdin, one
decision run as the human, and a worker start's check that its command could run. The click
verbs (cli/steer.py, cli/workers.py) and the click-free `worker start` share these, so both
faces say, exit and write alike."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.hot import store, where
from looop.hot.errors import LooopError
from looop.seed import ensure_data_dir
from looop.sessions.state import LOG, Session, get_session
from looop.workers import sandboxtty

MAX_BODY_BYTES = 4 << 20  # far past any prompt budget; stops a runaway pipe early
START_SETTLE_S = 1.0  # long enough for a shell to fail to find or exec its command
SETTLE_POLL_S = 0.005
SANDBOX_POLL_S = 0.02  # srt takes a second or more to start its box: no need to spin


def words(parts: tuple[str, ...] | list[str]) -> str | None:
    """A body given as words, joined by one space as v1.0 does (`goal write g1 fix the bug`);
    None when none was given (stdin, or the "give the body" line)."""
    return " ".join(parts) if parts else None


def body(value: str | None, what: str) -> str:
    """A body argument, or stdin for `-` / when omitted and piped."""
    if value == "-" or (value is None and not sys.stdin.isatty()):
        data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise LooopError(
                f"the {what} on stdin is over {MAX_BODY_BYTES >> 20} MiB; keep it short and "
                "point at files for the rest"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise LooopError(f"the {what} on stdin is not valid UTF-8") from None
    if value is None:
        raise LooopError(f"give the {what} as an argument, or `-` to read it from stdin")
    return value


def nonblank(text: str, what: str, instead: str) -> str:
    """The CLI's own words for what the action refuses anyway (its message names fields)."""
    if not text.strip():
        raise LooopError(f"the {what} is empty — {instead}")
    return text


def steer(
    ctx: Ctx,
    obj: dict[str, Any],
    journal: str | None,
    *,
    allow_dangerous: bool = False,
    check: Callable[[Ctx], None] | None = None,
) -> str:
    """Run one decision as the human; the success line to print. `check` may still refuse
    success (LooopError) after the move ran, before the line is printed."""
    # `looop worker start` with no beat host runs this module in its own process (the "worker
    # start" bench row) and runs no move.
    # lazy: the executor is ~25 modules that start would pay for
    from looop.act.actions import decision_from_obj
    from looop.act.executor import execute

    ensure_data_dir(ctx.paths)
    if journal is not None:
        obj["journal"] = journal
    decision = decision_from_obj(obj)
    before = _stamp(ctx.paths.last_shell)
    try:
        done = execute(ctx, ctx.knobs(), decision, actor="cli", allow_dangerous=allow_dangerous)
    finally:
        # only this command's output: a refused one must not replay the previous command's
        if obj["action"] == "run_shell" and _stamp(ctx.paths.last_shell) != before:
            _show_shell_output(ctx.paths.last_shell)
    if check is not None:
        check(ctx)
    return f"✓ {done.kind} · {done.journal}"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _show_shell_output(path: Path) -> None:
    try:
        rec = store.read_json_object(path) or {}
    except LooopError:
        return
    out, err = str(rec.get("stdout") or ""), str(rec.get("stderr") or "")
    if out:
        sys.stdout.write(out.rstrip("\n") + "\n")
        sys.stdout.flush()
    if err:
        sys.stderr.write(err.rstrip("\n") + "\n")
        sys.stderr.flush()


def started_ok(ctx: Ctx, worker_id: str) -> None:
    """A command that cannot run dies at once (127 not found, 126 not executable); refuse
    success if so. A worker run as its own argv was exec'd by the supervisor already (a
    failed exec fails the start itself); a `bash -c` line is waited on until bash has exec'd
    another program, or it ended, or START_SETTLE_S passed (a line that stays a shell); a
    sandboxed one until the pty relay inside says the same (workers/sandboxtty.py)."""
    # `looop kill` with no beat host runs this module in its own process and starts no worker.
    # lazy: the launcher is ~18 modules that kill would pay for
    from looop.workers.launch import normalise_target

    wid = normalise_target(worker_id)
    if (ctx.paths.data / "hosts" / "workers" / f"{wid}.json").exists():
        return  # started on an SSH host: the host said so (remote/ssh)
    if where.sandboxed(str(ctx.paths.data), wid):
        ended = _sandboxed_ended_at_once(ctx, wid)
    elif get_session(ctx.paths.data, wid).cmd[:2] != ["bash", "-c"]:
        return
    else:
        ended = _ended_at_once(ctx, wid)
    if ended is None or not ended.exit_code:  # ran, exited 0, or ended by a signal
        return
    code = ended.exit_code
    tail = [ln.replace("\r", "").strip() for ln in store.tail_lines(ended.dir / LOG, 3)]
    tail = [ln for ln in tail if ln]
    why = f": {tail[-1][:200]}" if tail else ""
    hint = (
        " — is the agent CLI installed and on PATH? (`looop init` picks another runner)"
        if code in (126, 127)
        else f" — see `looop log {wid}`"
    )
    raise LooopError(f"worker {wid} exited at once with code {code}{why}{hint}")


def _ended_at_once(ctx: Ctx, wid: str) -> Session | None:
    """The worker's session if it ended before bash became another program (None once bash
    exec'd its program, or after START_SETTLE_S: a line that stays a shell)."""

    deadline = ctx.clock.monotonic() + START_SETTLE_S
    while ctx.clock.monotonic() < deadline:
        session = get_session(ctx.paths.data, wid)
        if not session.alive:
            return session
        now = _exe(session.child_pid)
        if now is not None and os.path.basename(now) != "bash":
            return None  # bash found its program and became it
        select.select([], [], [], SETTLE_POLL_S)
    return None


def _sandboxed_ended_at_once(ctx: Ctx, wid: str) -> Session | None:
    """The sandboxed worker's session if it ended before its relay saw it run its program."""

    def alive() -> bool:
        return get_session(ctx.paths.data, wid).alive

    if sandboxtty.started(ctx, wid, alive, SANDBOX_POLL_S):
        return None
    return get_session(ctx.paths.data, wid)


def _exe(pid: int | None) -> str | None:
    """The program a process runs now (None when it is gone or unreadable)."""
    if not pid:
        return None
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
