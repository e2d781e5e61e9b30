"""`looop worker start|continue|unstall|diff`, `restart`, `prune` and `worktrees` (`list`,
`show` and `kill` are cli/needs.py's and cli/steermove.py's, so `ls` and `kill` load none of
this). A start's move and its check: the
two lines it prints, the daily budget's refusal, and whether the worker's command could run at
all (tests/unit/cli/test_worker_start.py)."""

from __future__ import annotations

import math
import os
import select
from typing import Any, cast

import click

from looop.act.moves.far import continue_worker
from looop.cli import idcomplete
from looop.cli.app import JOURNAL_OPT, body, hidden_alias, make_ctx, show_rows
from looop.cli.diff import diff_cmd
from looop.cli.needs import list_cmd, worker_show
from looop.cli.sessions import emit, far_worker, target_sid
from looop.cli.steermove import kill_cmd, steer
from looop.core.context import Ctx
from looop.home import store, where
from looop.home.errors import LooopError
from looop.loop.ended import clear_stall
from looop.runners import COST_REPORTING, program
from looop.sandbox import boxtty
from looop.sessions.client import restart
from looop.sessions.state import KEPT, LOG, Session, get_session, list_sessions, prune_aged
from looop.spend.spent import MAX_BUDGET_USD, POLICIES
from looop.spend.statusspend import start_refused
from looop.spend.usagewindows import HELD_DIR
from looop.views.beatlog import relative
from looop.workers.ids import normalise_target
from looop.workers.kepttrees import kept_trees
from looop.workers.resume import restart_worker
from looop.workers.worktree import end_generation

worker_group = click.Group("worker", help="Start, list or kill workers (agents in PTY sessions).")


@worker_group.command(
    "start", help="Start worker ID with PROMPT (words joined by spaces, or - for stdin)."
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.argument("prompt", nargs=-1)
@click.option("--runner", default=None, help="A runner from the config (default: its default).")
@click.option(
    "--command",
    default=None,
    help="Replace the launch command for this worker; it must name {{prompt_file}}.",
)
@click.option(
    "--verify",
    default=None,
    help="A read-only check run once after it exits (inside its sandbox when it runs in one; "
    "on its host when it runs on an SSH host).",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="Run it inside srt's sandbox, or not (default: the config's `sandbox`).",
)
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="PATH|URL",
    help="Run it in its own git worktree of this repo (under the data dir), on its own branch; "
    "on an SSH host, a repository's path there or a URL it clones; on a Kubernetes host, the "
    "URL its pod clones. Given more than once (here only): one worktree of each, side by side "
    "in the worker's folder.",
)
@click.option(
    "--branch", default=None, metavar="NAME", help="Its checkout's branch (default looop/ID)."
)
@click.option(
    "--resume",
    is_flag=True,
    default=False,
    help="If its session dies without an end (reboot, crash), `looop up` starts it again on "
    "its agent conversation.",
)
@click.option(
    "--steerable",
    is_flag=True,
    default=False,
    help="Let decisions type into it, send it keys and restart it though it runs with fewer "
    "walls than the decider (unsandboxed while the decider is sandboxed).",
)
@click.option(
    "--host",
    default=None,
    metavar="NAME",
    help="Run it on this host (SSH or Kubernetes: looop host add), or `local`; default: the "
    "most room left.",
)
@click.option(
    "--budget",
    type=float,
    default=None,
    metavar="USD",
    help="Its spend ceiling, metered each beat from its CLI's own records (a custom "
    "--command: from what it reports with `looop cost report`).",
)
@click.option(
    "--on-budget",
    type=click.Choice(POLICIES),
    default="pause",
    show_default=True,
    help="At the budget: pause all it runs (`looop worker continue`) or stop it (worktree kept).",
)
@click.option(
    "--attempts",
    default=None,
    metavar="N|RUNNER,…",
    help="Start N workers ID.1…ID.N at the same task, each in its own worktree of --repo (or "
    "one per runner named); compare them with `looop review ID`, land one with --pick.",
)
@JOURNAL_OPT
def worker_start(
    worker_id: str,
    prompt: tuple[str, ...],
    sandbox: bool | None,
    repos: tuple[str, ...],
    budget: float | None,
    attempts: str | None,
    **opts: Any,  # runner, command, verify, branch, resume, steerable, host, on_budget, journal
) -> None:
    ctx = make_ctx()

    if budget is not None and not (math.isfinite(budget) and 0 < budget <= MAX_BUDGET_USD):
        raise click.UsageError(
            f"--budget {budget:g}: give a positive amount in USD, at most "
            f"{MAX_BUDGET_USD:g} (e.g. --budget 5)"
        )
    refuse_over_fleet_budget(ctx, worker_id, opts["command"], opts["runner"])
    obj: dict[str, object] = {
        "action": "start_worker",
        "id": worker_id,
        "prompt": body(prompt, "worker prompt"),
    }
    if not str(obj["prompt"]).strip():
        raise LooopError(
            f"worker {worker_id} needs its brief: `looop worker start {worker_id} "
            "WHAT TO DO` (words, or `-` with the brief on stdin)"
        )
    opts["sandbox"] = None if sandbox is None else ("on" if sandbox else "off")
    if attempts is not None:
        opts["attempts"] = int(attempts) if attempts.strip().isdigit() else attempts.split(",")
    for k in ("runner", "command", "verify", "sandbox", "branch", "host", "attempts"):
        if opts.get(k) is not None:
            obj[k] = opts[k]
    obj.update({k: True for k in ("resume", "steerable") if opts[k]})
    if budget is not None:  # set before the start, undone if it is refused; journaled
        obj["budget_usd"], obj["on_budget"] = budget, opts["on_budget"]
    if repos:  # several: a list, each as one is given
        given = [_repo_given(r, opts["host"]) for r in repos]
        obj["repo"] = given if len(given) > 1 else given[0]
    click.echo(_started_lines(ctx, obj, opts["journal"], budget), nl=False)


@worker_group.command(
    "continue",
    help="Let worker ID go on after it reached its budget: resumes a paused one, all it runs; "
    "--budget sets a new ceiling, else its budget is lifted.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
@click.option("--budget", type=float, default=None, metavar="USD", help="Its new ceiling.")
def worker_continue(worker_id: str, budget: float | None) -> None:
    click.echo(continue_worker(make_ctx(), normalise_target(worker_id), budget))


@worker_group.command(
    "unstall",
    help="Clear worker ID's stall (it failed the same way again and again): the decider may "
    "start or restart it again, and its failure streak starts over.",
)
@click.argument("worker_id", shell_complete=idcomplete.workers)
def worker_unstall(worker_id: str) -> None:
    ctx = make_ctx()
    wid = normalise_target(worker_id)
    rec = clear_stall(ctx, ctx.knobs(), wid, "cli")
    click.echo(f"worker {wid} is no longer stalled (it was: {rec.get('why')})")


worker_group.add_command(kill_cmd)
worker_group.add_command(diff_cmd)


worker_group.add_command(list_cmd, "list")
worker_group.add_command(worker_show)
hidden_alias(worker_group, list_cmd, "ls")  # `worker ls` as the manual says, one help row

START_SETTLE_S = 1.0  # long enough for a shell to fail to find or exec its command
SETTLE_POLL_S = 0.005
SANDBOX_POLL_S = 0.02  # srt takes a second or more to start its box: no need to spin


def _repo_given(repo: str, host: str | None) -> str:
    """A --repo as the move gets it: relative to where the human stands; ~ the shell expands,
    or the worker start does; a URL (a host clones it: https://…, git@host:path) is no path,
    nor is any repo on a host named (a path there is the host's: a relative one is refused,
    not made ours)."""
    first = repo.split("/", 1)[0]
    keep = not repo or repo.startswith("~") or "://" in repo or ":" in first
    keep = keep or host not in (None, "local")
    return repo if keep else os.path.abspath(repo)


def _started_lines(
    ctx: Ctx, obj: dict[str, object], journal: str | None, budget: float | None
) -> str:
    """The start move (each worker it starts checked: started_ok) and its two lines."""
    wid, n = str(obj["id"]), cast("int | list[str]", obj.get("attempts") or [])
    ids = [f"{wid}.{i}" for i in range(1, 1 + (n if isinstance(n, int) else len(n)))]

    def each(c: Ctx) -> None:
        for i in ids or [wid]:
            started_ok(c, i)

    done = steer(ctx, obj, journal, check=each)
    if ids:
        return f"{done}\n  compare: looop review {wid} · pick one: looop land {wid} --pick N\n"
    told = ""
    cmd = obj.get("command")
    if budget is not None and isinstance(cmd, str) and program(cmd) not in COST_REPORTING:
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


def refuse_over_fleet_budget(ctx: Ctx, wid: str, command: str | None, runner: str | None) -> None:
    """The daily budget's refusal of a new worker (decide/cost/breakers.start_refused)."""

    def line() -> str | None:
        if command is not None:
            return command
        r = ctx.config().runner(runner)
        return r.worker if r is not None else None

    why = start_refused(ctx.knobs(), str(ctx.paths.data), ctx.clock, wid, line)
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
    tail = [
        ln.replace("\r", "").strip() for ln in store.tail_lines(os.path.join(ended.dir, LOG), 3)
    ]
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


@click.command(
    "restart",
    help="Restart a session's command (the log keeps growing); a worker with a recorded agent "
    "conversation starts again on it, dead or alive.",
)
@click.argument("sid", shell_complete=idcomplete.sessions)
@click.option("--json", "as_json", is_flag=True)
def restart_cmd(sid: str, as_json: bool) -> None:
    ctx, target = make_ctx(events_to=None), target_sid(sid, True)
    far = far_worker(ctx, target)  # a worker on an SSH host restarts there
    if far is not None:
        raise LooopError(
            f"worker {target} runs in a Kubernetes Job on host {far.host.name}: `looop restart` "
            f"does not reach it — kill it and start it again (`looop kill {target}`)"
        )
    done = restart_worker(ctx, ctx.knobs(), target)
    if done is not None:
        conv = done.get("conversation")
        emit(done, as_json, f"resumed {target}" + (f" on conversation {conv}" if conv else ""))
        return
    emit(restart(ctx.paths.data, target), as_json, f"restarting {sid}")


@click.command(
    "prune",
    help="Remove every finished worker session now (transcripts included); a stopped "
    "pulse's log is kept: it says why it stopped.",
)
@click.option("--dry-run", is_flag=True)
def prune_cmd(dry_run: bool) -> None:
    ctx = make_ctx(events_to=None)
    if dry_run:
        dead = [s.id for s in list_sessions(ctx.paths.data) if not s.alive and s.id not in KEPT]
        click.echo("would remove: " + (", ".join(dead) or "nothing"))
        return
    gone = prune_aged(ctx.paths.data, 0, ctx.clock.now())
    if gone:
        said = make_ctx()  # a kept worktree is said on stderr
        for sid in gone:
            end_generation(said, sid)  # its worktree removed (a dirty one kept and said)
    click.echo(f"pruned {len(gone)} session(s)" + (f": {', '.join(gone)}" if gone else ""))


@click.command(
    "worktrees",
    help="List the worktrees of workers that no longer run: id, path, branch, dirty or "
    "clean, kept for how long, when it expires (a dirty one is saved as a patch first).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def worktrees_cmd(as_json: bool) -> None:
    ctx = make_ctx(events_to=None)
    knobs = ctx.knobs()
    now = ctx.clock.now()
    rows = [k.row(now) for k in kept_trees(ctx, knobs)]

    def line(r: dict[str, Any]) -> str:
        age = relative(-float(r["age_s"])) if isinstance(r["age_s"], int) else "—"
        exp = r["expires_at"]
        if isinstance(exp, int):
            ends = f"expires {relative(exp - now)}"
        elif r["state"] == "dirty":
            ends = "kept until its session is reaped"
        else:
            ends = "removed when its session is reaped"
        head = f"{r['id']:<16} {r['state']:<10} {r['branch']:<24} kept {age:<10}"
        return f"{head} {ends}\n  {r['path']}"

    empty = "no worktrees of workers that no longer run"
    if not show_rows(rows, as_json, empty, line, indent=2, ensure_ascii=False):
        return
    keep = knobs.num("worktree_keep_days")
    click.echo(
        f"a dirty worktree is kept {keep} days (worktree_keep_days), warned 2 days before, "
        "then its work is saved as a patch under <data>/worktrees/ and it is removed"
    )
