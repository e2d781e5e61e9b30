"""The move that starts a worker: start_worker (its launch line and verify check pass the shell
gate; placed here or on a host; held to its budget). Proposing its change for landing is
act/moves/notes.py's (an ask; landing is a human's action, act/landing.py, which no move
imports), and its end, kill_worker, act/moves/kill.py's: a start loads none of the review's
readers, a kill neither the launch nor the shell gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Self

from looop.act.decision import (
    DecisionError,
    Mover,
    OnWorker,
    opt_bool,
    opt_sandbox,
    opt_str,
    opt_usd,
    req_str,
    set_field,
    shown,
)
from looop.act.moves import far
from looop.act.outcome import ExecError
from looop.act.shellgate import decided_line, shell_guard
from looop.core import provenance
from looop.home import store
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.remote import rooms
from looop.remote.repospec import ref_spelled
from looop.spend.spent import MAX_BUDGET_USD, budgets, set_budget
from looop.spend.statusspend import daily_budget, spent_today
from looop.workers.errors import StartHeld
from looop.workers.ids import live_workers
from looop.workers.launch import roll_back, start_worker
from looop.workers.started import Away, StartRequest
from looop.workers.worktree import tree_path

ON_BUDGET = ("pause", "stop")  # spend/spent.py POLICIES (not imported: act stays light)

_START_TEACH = r"""start_worker{id,prompt,runner?,command?,verify?,repo?,branch?,resume?,host?,budget_usd?,on_budget?,attempts?}
- start a worker session for hands-on work. id = the goal it serves; prompt = a complete,
self-contained brief; runner picks a configured runner; command replaces the launch line;
verify = one read-only shell check looop runs once after the worker exits. repo = an absolute
path: the worker starts in its own git worktree of it, on branch looop/<id> (or branch); a
list of paths: one such worktree of each, side by side; without repo it starts in the data
dir. resume = true: if it crashes, `looop up` starts it again on its own conversation. host =
a registered SSH host's name (each place's load is in sys-sessions) or "local"; without it
the place with the most room left. budget_usd = its spend ceiling in USD, metered from its
CLI's records (a command's: the cost it reports); at it the worker is paused (on_budget
"pause", the default) or stopped ("stop"). A start whose account is at its usage limit is
held, made at the reset. attempts = 2..8 or a list of runners: workers <id>.1 … at the task,
each its own worktree of repo; a human lands one.
  {"action":"start_worker","id":"release-2-1","prompt":"Prepare release 2.1 in ~/src/app; ask before tagging.","verify":"test -f reports/release-2-1.md"}"""  # noqa: E501


@dataclass(frozen=True)
class StartWorker(OnWorker):
    tag = "start_worker"
    kind = "worker"
    teach = _START_TEACH

    id: str
    prompt: str
    runner: str | None = None
    command: str | None = None
    verify: str | None = None
    sandbox: SandboxPolicy | None = None  # None: the config decides
    repo: str | None = None  # run it in its own git worktree of this repo
    branch: str | None = None  # that worktree's branch (default looop/<id>)
    repos: tuple[str, ...] = ()  # several repos (`repo` a list): one worktree of each
    resume: bool = False  # `looop up` starts it again on its conversation after a crash
    host: str | None = None  # an SSH host (looop host add) or "local"; None: placed
    budget_usd: float | None = None  # its spend ceiling, metered each beat (spend/spent.py)
    on_budget: str = "pause"  # at it: "pause" (SIGSTOP) or "stop" (worktree kept)
    steerable: bool = False  # a human's opt-in to decisions steering it (act/reach.py)
    attempts: tuple[str, ...] = ()  # one worker <id>.<n> each: "" its runner, else a runner/command

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.prompt.strip():
            raise DecisionError("start_worker: field 'prompt' must be a non-empty string")
        b = self.budget_usd
        if b is not None and not (
            isinstance(b, int | float) and not isinstance(b, bool) and 0 < b <= MAX_BUDGET_USD
        ):  # NaN fails the range too
            raise DecisionError(
                f"start_worker: field 'budget_usd' must be a number of USD above 0 and at most "
                f"{MAX_BUDGET_USD:g}, got {shown(b)}"
            )
        if b is not None:
            set_field(self, "budget_usd", float(b))
        if self.on_budget not in ON_BUDGET:
            raise DecisionError(
                f'start_worker: field \'on_budget\' must be "pause" or "stop", '
                f"got {shown(self.on_budget)}"
            )
        if self.repo is not None and not self.repo.strip():
            raise DecisionError("start_worker: field 'repo' must be the path of a git repository")
        if self.branch is not None and self.repo is None:
            raise DecisionError("start_worker: field 'branch' needs 'repo' (the repository)")
        if self.branch is not None and not self.branch.strip():
            raise DecisionError("start_worker: field 'branch' must be a branch name")
        said = ref_spelled(self.branch) if self.branch is not None else None
        if said is not None:
            raise DecisionError(f"start_worker: field {said}")
        if self.host is not None and not self.host.strip():
            raise DecisionError("start_worker: field 'host' must name a host (looop host ls)")
        if self.attempts and not (self.repo and self.branch is None):
            raise DecisionError(
                "start_worker: field 'attempts' needs 'repo' and no 'branch': each attempt "
                "works in its own worktree of the repository, on branch looop/<id>.<n>"
            )

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        tag, s, opt = cls.tag, req_str, opt_str
        return cls(
            id=s(tag, obj, "id"),
            prompt=s(tag, obj, "prompt"),
            runner=opt(tag, obj, "runner"),
            command=opt(tag, obj, "command"),
            verify=opt(tag, obj, "verify"),
            sandbox=opt_sandbox(tag, obj),
            **_repos(obj),
            branch=opt(tag, obj, "branch"),
            resume=opt_bool(tag, obj, "resume"),
            host=opt(tag, obj, "host"),
            budget_usd=opt_usd(tag, obj, "budget_usd"),
            on_budget=_policy(opt(tag, obj, "on_budget")),
            steerable=opt_bool(tag, obj, "steerable"),
            attempts=_attempts(obj.get("attempts")),
        )

    def summary(self) -> str:
        b = self.budget_usd
        if self.attempts:
            return f"start-worker {self.id} · {len(self.attempts)} attempts"
        if b is None:
            return f"start-worker {self.id}"
        shown_usd = f"{b:.2f}" if round(b, 2) == b else f"{b:g}"  # a cent's fraction kept
        return f"start-worker {self.id} · budget ${shown_usd}, {self.on_budget} at it"

    def perform(self, by: Mover) -> str | None:
        if self.attempts:  # each an ordinary worker <id>.<n>; every check before the first
            self._room_for(by, len(self.attempts))
            return self._start_attempts(by)
        # The worker's launch line and its verify check are shell too: same policy as
        # run_shell. The line runs in the worker's worktree when it has a repo (verify: in
        # the data dir).
        ctx = by.ctx
        home = ctx.env.get("HOME", "")
        given = [home + r[1:] if r.startswith("~/") and home else r for r in self.all_repos()]
        here = self.host in (None, "local")
        local = tuple(r for r in given if r.startswith("/")) if here else ()
        tree = tree_path(ctx, self.id) if local else None
        for what, text, cwd in (
            ("start_worker command", self.command, tree),
            ("start_worker verify", self.verify, None),
        ):
            if text is not None and text.strip():
                shell_guard(by, text, what, cwd, local)
        if by.by_agent:  # a stalled worker waits for a human (views/outcomes.py)
            far.not_stalled(ctx, self.id, "start_worker")
        unread = False
        if by.decided and self.verify is not None and self.verify.strip():
            unread = decided_line(by, self.verify, "start_worker verify", "start_worker")
        host, away = self._where(by)
        restore = self._hold_to_budget(by)
        try:
            start_worker(ctx, by.knobs, self.request(by.decided, host), cfg=by.cfg, away=away)
        except StartHeld as e:  # its account's usage window: made at the reset, not failed
            return str(e)
        except BaseException:
            restore()  # a refused start leaves a live namesake's budget as it was
            raise
        if unread and self.verify is not None:  # after: a start forgets the last worker's records
            cmd = store.encode(self.verify.strip())
            provenance.mark_unread(ctx.paths, provenance.VERIFY, self.id, cmd)
        return None

    def request(self, decided: bool, host: str | None) -> StartRequest:
        """The start this move asks for, placed on `host` (None: placed by the rule)."""
        same = ("runner", "command", "verify", "sandbox", "repo", "repos", "branch", "resume")
        asked = {k: getattr(self, k) for k in (*same, "steerable")}  # as the start names them
        return StartRequest(worker=self.id, brief=self.prompt, host=host, decided=decided, **asked)

    def all_repos(self) -> tuple[str, ...]:
        return self.repos or ((self.repo,) if self.repo is not None else ())

    def _where(self, by: Mover) -> tuple[str | None, Away | None]:
        """The host named and the way there. A worker to be metered (its budget;
        refuse_unmetered under a daily budget) stays here, where the meter reads its CLI's
        records."""
        budget = daily_budget(by.knobs) is not None
        fail_closed = by.knobs.values.get("refuse_unmetered") and budget
        # a custom command's budget counts what it reports, which comes home from any host
        metered = self.budget_usd is not None and self.command is None
        why = "its budget" if metered else "refuse_unmetered" if fail_closed else None
        host, hosts = self.host, (by.ctx.paths.hosts).is_dir()
        if why is not None and host not in (None, "local"):
            msg = f"worker {self.id}: {why} needs its spend metered, and looop meters workers here"
            raise ExecError(
                f"{msg} only: on host {host} its CLI's records stay there (it would show "
                "unmetered) — start it with --host local, or without a host"
            )
        host = "local" if why is not None and hosts else host  # not placed on a host
        if host is None and not hosts:
            return None, None
        paused = self.budget_usd is not None and self.on_budget != "stop"
        pod = host not in (None, "local") and rooms().kind_of(by.ctx.paths.data, host) == "k8s"
        if paused and pod:
            raise ExecError(
                f"worker {self.id}: a Kubernetes pod cannot be paused at its budget — "
                "give it --on-budget stop, or start it on an SSH host or here"
            )
        return host, rooms().away

    def _attempt(self, n: int, runs: str) -> StartWorker:
        """Attempt n: this start as worker <id>.<n>, running its own runner, the runner named
        or the command line given (a runner is one word)."""
        runner, command = self.runner, self.command
        if runs:
            spaced = " " in runs
            runner, command = (None, runs) if spaced else (runs, None)
        return replace(self, id=f"{self.id}.{n}", attempts=(), runner=runner, command=command)

    def _start_attempts(self, by: Mover) -> str | None:
        """Each attempt in turn; one that cannot start takes back those started before it."""
        said: list[str | None] = []
        for n, runs in enumerate(self.attempts, 1):
            try:
                said.append(self._attempt(n, runs).perform(by))
            except LooopError as e:
                done = [f"{self.id}.{k}" for k in range(1, n)]
                away = roll_back(by.ctx, done)
                gone = [wid for wid in done if wid not in away]
                for wid in gone if self.budget_usd is not None else []:
                    set_budget(str(by.ctx.paths.data), wid, None)
                back = [f"{', '.join(gone)} stopped and removed"] if gone else []
                if away:
                    back.append(f"{', '.join(away)} left running on its host: `looop kill` it")
                said_back = f" — {'; '.join(back)}" if back else ""
                raise ExecError(
                    f"attempt {self.id}.{n} of {len(self.attempts)} did not start: {e}{said_back}"
                ) from None
        return "; ".join(s for s in said if s) or None

    def _room_for(self, by: Mover, n: int) -> None:
        """Attempts count as n workers against the fleet cap and the daily budget."""
        cfg = by.config()
        gone = [a for a in self.attempts if a and " " not in a and cfg.runner(a) is None]
        if gone:
            raise ExecError(
                f"attempt runner '{gone[0]}' is not in {cfg.source} (have: "
                f"{', '.join(sorted(cfg.runners))}): nothing started"
            )
        live, cap = len(live_workers(by.ctx.paths.data)), by.knobs.num("max_workers")
        if 0 < cap < live + n:
            raise ExecError(
                f"{n} attempts need {n} workers and the fleet cap (max_workers {cap}) leaves "
                f"{max(cap - live, 0)}: nothing started — kill some or raise max_workers"
            )
        day, each = daily_budget(by.knobs), self.budget_usd
        if day is not None and each is not None:
            left = day - spent_today(str(by.ctx.paths.data), by.ctx.clock)[0]
            if n * each > left:
                raise ExecError(
                    f"{n} attempts at ${each:g} each pass today's budget (${left:.2f} left of "
                    f"max_daily_usd ${day:.2f}): nothing started — give a smaller --budget"
                )

    def _hold_to_budget(self, by: Mover) -> Callable[[], None]:
        """budget_usd set before the start, as `worker start --budget` does (its first beat
        already holds it to it); what undoes that if the start is refused."""
        if self.budget_usd is None:
            return lambda: None
        data, wid = str(by.ctx.paths.data), self.id
        was = budgets(data).get(wid)
        set_budget(data, wid, self.budget_usd, self.on_budget)
        if was is None:
            return lambda: set_budget(data, wid, None)
        return lambda: set_budget(data, wid, was[0], was[1])


MAX_REPOS = 8  # repositories one worker works across
MAX_ATTEMPTS = 8  # workers one start_worker may start at one task


def _repos(obj: dict[str, Any]) -> dict[str, Any]:
    """`repo`, and as a list `repos`: every repository, checked (a list of one is that one
    repo)."""
    raw = obj.get("repo")
    if not isinstance(raw, list):
        return {"repo": opt_str(StartWorker.tag, obj, "repo")}
    if not 1 <= len(raw) <= MAX_REPOS or not all(isinstance(r, str) and r.strip() for r in raw):
        raise DecisionError(
            f"start_worker: field 'repo' must be a repository's path or a list of 1 to "
            f"{MAX_REPOS} paths, got {shown(raw)}"
        )
    twice = [r for n, r in enumerate(raw) if r in raw[:n]]
    if twice:
        raise DecisionError(
            f"start_worker: field 'repo' names {shown(twice[0], 1000)} twice — give each "
            "repository once"
        )
    return {"repo": str(raw[0]), "repos": tuple(raw) if len(raw) > 1 else ()}


def _attempts(raw: object) -> tuple[str, ...]:
    """`attempts`: a count (each the move's own runner) or a list of runners or commands."""
    if raw is None:
        return ()
    got = ("",) * raw if type(raw) is int else raw
    if not isinstance(got, list | tuple) or not all(isinstance(a, str) for a in got):
        got = ()
    if not 2 <= len(got) <= MAX_ATTEMPTS:
        raise DecisionError(
            f"start_worker: field 'attempts' must be 2 to {MAX_ATTEMPTS}, or a list of that many "
            f"runners, got {shown(raw)} (one worker needs no attempts)"
        )
    return tuple(str(a).strip() for a in got)


def _policy(given: str | None) -> str:
    return "pause" if given is None else given  # "" is a policy the action refuses, not the default
