"""`looop worker start`'s move and its check, without click: the two lines it prints, the
daily budget's refusal, and whether the worker's command could run at all. The click verb
(cli/workers.py) runs it (tests/unit/cli/test_worker_start.py)."""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from dataclasses import dataclass

from looop.cli.params import body
from looop.cli.steermove import steer
from looop.core.context import Ctx
from looop.home import store, where
from looop.home.errors import LooopError
from looop.runners import program
from looop.sandbox import boxtty
from looop.sessions.state import LOG, Session, get_session
from looop.spend import COST_REPORTING
from looop.spend.breakers import start_refused
from looop.spend.usagewindows import HELD_DIR
from looop.workers.ids import normalise_target

START_SETTLE_S = 1.0  # long enough for a shell to fail to find or exec its command
SETTLE_POLL_S = 0.005
SANDBOX_POLL_S = 0.02  # srt takes a second or more to start its box: no need to spin


@dataclass(slots=True)
class Start:
    """`looop worker start`'s request as the click verb (cli/workers.py) hands it here."""

    worker_id: str = ""
    prompt: str | None = None
    runner: str | None = None
    command: str | None = None
    verify: str | None = None
    journal: str | None = None
    sandbox: str | None = None  # "on" / "off"; None: the config decides
    repo: str | None = None  # run it in its own git worktree of this repo
    repos: tuple[str, ...] = ()  # several --repo: one worktree of each (click's)
    branch: str | None = None
    resume: bool = False
    steerable: bool = False  # a human lets decisions steer it (act/reach.py)
    host: str | None = None  # an SSH host's name (looop host add), or local
    budget: float | None = None  # its spend ceiling (USD); click's --budget only
    on_budget: str = "pause"
    attempts: int | list[str] | None = None  # --attempts: a count or runners


def _repo_given(repo: str, host: str | None) -> str:
    """A --repo as the move gets it: relative to where the human stands; ~ the shell expands,
    or the worker start does; a URL (a host clones it: https://…, git@host:path) is no path,
    nor is any repo on a host named (a path there is the host's: a relative one is refused,
    not made ours)."""
    first = repo.split("/", 1)[0]
    keep = not repo or repo.startswith("~") or "://" in repo or ":" in first
    keep = keep or host not in (None, "local")
    return repo if keep else os.path.abspath(repo)


def start_worker_lines(start: Start, ctx: Ctx, check: Callable[[Ctx, str], None]) -> str:
    """The move and its two lines (shared with the click verb)."""
    refuse_over_fleet_budget(ctx, start)

    obj: dict[str, object] = {
        "action": "start_worker",
        "id": start.worker_id,
        "prompt": body(start.prompt, "worker prompt"),
    }
    if not str(obj["prompt"]).strip():
        raise LooopError(
            f"worker {start.worker_id} needs its brief: `looop worker start {start.worker_id} "
            "WHAT TO DO` (words, or `-` with the brief on stdin)"
        )
    for k in ("runner", "command", "verify", "sandbox", "branch", "host", "attempts"):
        v = getattr(start, k)
        if v is not None:
            obj[k] = v
    if start.resume:
        obj["resume"] = True
    if start.steerable:
        obj["steerable"] = True
    if start.budget is not None:  # set before the start, undone if it is refused; journaled
        obj["budget_usd"], obj["on_budget"] = start.budget, start.on_budget
    if start.repos:  # several: a list, each as one is given
        obj["repo"] = [_repo_given(r, start.host) for r in start.repos]
    elif start.repo is not None:
        obj["repo"] = _repo_given(start.repo, start.host)
    wid, n = start.worker_id, start.attempts
    ids = [f"{wid}.{i}" for i in range(1, 1 + (n if isinstance(n, int) else len(n or [])))]

    def each(c: Ctx) -> None:
        for i in ids or [wid]:
            check(c, i)

    done = steer(ctx, obj, start.journal, check=each)
    if ids:
        return f"{done}\n  compare: looop review {wid} · pick one: looop land {wid} --pick N\n"
    told = ""
    cmd = start.command
    if start.budget is not None and cmd is not None and program(cmd) not in COST_REPORTING:
        told = (
            f"  budget: counts only what {wid} reports "
            f"(`looop cost report worker {wid} RUNNER USD`): its command keeps no record "
            "looop reads\n"
        )
    if _held(ctx, wid):  # its account is in a usage window: started at the reset
        return f"{done}\n{told}  see: looop ls (scheduled) · looop status (usage windows)\n"
    return f"{done}\n{told}  watch: looop shot {wid} · looop log {wid} -f · looop attach {wid}\n"


def _held(ctx: Ctx, wid: str) -> bool:
    return (ctx.paths.data / HELD_DIR / f"{normalise_target(wid)}.json").is_file()


def refuse_over_fleet_budget(ctx: Ctx, start: Start) -> None:
    """The daily budget's refusal of a new worker (decide/cost/breakers.start_refused)."""

    def line() -> str | None:
        if start.command is not None:
            return start.command
        r = ctx.config().runner(start.runner)
        return r.worker if r is not None else None

    why = start_refused(ctx.knobs(), ctx.paths, ctx.clock, start.worker_id, line)
    if why is not None:
        raise LooopError(why)


def started_ok(ctx: Ctx, worker_id: str) -> None:
    """A command that cannot run dies at once (127 not found, 126 not executable); refuse
    success if so. A worker run as its own argv was exec'd by the supervisor already (a
    failed exec fails the start itself); a `bash -c` line is waited on until bash has exec'd
    another program, or it ended, or START_SETTLE_S passed (a line that stays a shell); a
    sandboxed one until its waiter (or pty relay) inside says the same (sandbox/boxtty.py)."""
    wid = normalise_target(worker_id)
    if _held(ctx, wid):
        return  # held for its account's usage window: nothing ran yet
    if (ctx.paths.host_record(wid)).exists():
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
    """The sandboxed worker's session if it ended before its note said it runs its program."""

    def alive() -> bool:
        return get_session(ctx.paths.data, wid).alive

    if boxtty.started(ctx, wid, alive, SANDBOX_POLL_S):
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
