"""Start a worker: validate everything first, then commit (prompt file, verify, spawn)."""

from __future__ import annotations

import contextlib
import os
import shlex
import string
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from looop.core import provenance
from looop.core.context import Ctx
from looop.core.promptfile import substitute_prompt_file
from looop.home import store
from looop.home.config import Config, Knobs, Runner, removed_placeholder
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import SandboxPolicy
from looop.home.sandboxpolicy import resolve as resolve_sandbox
from looop.home.where import program_on
from looop.runners import profile, program
from looop.runners.presets import PLACEHOLDER
from looop.sandbox import boxtty
from looop.sandbox import worker as sbx
from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import Session, SessionError, reap
from looop.spend.usagewindows import unhold
from looop.workers import boxed, ports, workspace
from looop.workers import worktree as wt
from looop.workers.errors import WorkerError
from looop.workers.ids import live_workers, normalise_target
from looop.workers.mcpwire import settings, wire
from looop.workers.started import WORKER_SIZE as WORKER_SIZE
from looop.workers.started import Away, Started, StartRequest
from looop.workers.startrecord import hold_if_limited, note_start, plan_start
from looop.workers.treerecord import Tree, WorktreeError, load_all, save
from looop.workers.treesetup import Setup, copy_included, log_dir, run_setup, setup_for
from looop.workers.treework import left_untracked
from looop.workers.worktree import Plan, end_generation


def contract_text(worker_id: str, runner: str) -> str:
    # read beside this module: looop is installed from a directory, never a zip (seed's
    # package_text), so importlib.resources would only cost every start its import
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract.md")
    with open(here, encoding="utf-8") as f:
        raw = f.read()
    return raw.replace("__ID__", worker_id).replace("__RUNNER__", runner)


# Characters that mean nothing to bash outside a handful of contexts excluded below: a line made
# only of these (plus quotes, which shlex reads as bash does when no `$`, backquote or
# backslash is inside) is one plain command.
_PLAIN = frozenset(string.ascii_letters + string.digits + "_-./:,=+@%^ \t'\"")
# bash's keywords and builtins: a line that starts with one is no plain argv
_BASH_WORDS = """
! [[ ]] { } . : alias bg bind break builtin case cd command compgen complete continue
declare dirs disown do done echo elif else enable esac eval exec exit export false fc
fg fi for function getopts hash help history if in jobs kill let local logout mapfile
popd printf pushd pwd read readarray readonly return select set shift shopt source
suspend test then time times trap true type typeset ulimit umask unalias unset until
wait while
"""
_SHELL_WORDS = frozenset(_BASH_WORDS.split())


def worker_argv(line: str, path: str | None) -> list[str]:
    """The worker's argv. A line that is one plain command (no expansion, redirection,
    operator, assignment or shell builtin) whose program is on `path` runs as its own
    words, so no shell stays behind as a wrapper; anything else runs as `bash -c LINE` (bash
    execs a last simple command in place, so a `"$(cat prompt)"` line leaves no wrapper
    either, and a missing program ends the worker with 127 and bash's message, as ever)."""
    words = plain_words(line)
    if words is not None and program_on(words[0], path or "") is not None:
        return words
    return ["bash", "-c", line]


def plain_words(line: str) -> list[str] | None:
    """The line's words when it is one plain command (worker_argv's rule, where its program
    is found aside: a pod has its own PATH), else None."""
    if not set(line) <= _PLAIN:
        return None
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if (
        words
        and "=" not in words[0]
        and words[0] not in _SHELL_WORDS
        and ("/" not in words[0] or words[0].startswith("/"))  # ./x: relative to the worker
    ):
        return words
    return None


def check_command(wid: str, command: str, decided: bool = False) -> None:
    """A worker's own command (`--command`, a move's `command`) must say where the brief goes,
    as v1.0 requires: the prompt file is the worker's only brief (it has no stdin), and a
    command without it would start a worker that never reads what it was asked to do."""
    label = "start_worker's command" if decided else "--command"
    if (why := removed_placeholder(command)) is not None:
        raise WorkerError(f"worker {wid}: {label}: {why}")
    if PLACEHOLDER not in command:
        raise WorkerError(
            f"worker {wid}: {label} has no {PLACEHOLDER}, so the brief would never reach "
            f"the worker — put it where the agent reads its prompt (e.g. "
            f"'my-agent \"$(cat {PLACEHOLDER})\"'); a command that takes no brief names it "
            f"in a comment ('npm run dev # {PLACEHOLDER}')"
        )


def start_worker(
    ctx: Ctx,
    knobs: Knobs,
    req: StartRequest,
    *,
    cfg: Config | None = None,
    away: Away | None = None,
) -> Started:
    """req: the start as asked (workers/started.py says each field); cfg: the beat's config
    when a decision starts the worker (None reads the file); away: the way to hosts
    (remote/dispatch.py), needed once hosts are registered.

    The steps, each over the one request: validate it, place it (a host, or here), prepare
    what a start here needs while nothing has changed, then commit (brief, verify, worktree,
    spawn). A start whose account is at its usage limit is held as `scheduled` (StartHeld,
    workers/startrecord.py)."""
    q = _validated(ctx, knobs, req, cfg if cfg is not None else ctx.config())
    # its account in a usage window: kept for the reset (StartHeld), nothing changed
    hold_if_limited(ctx, q.r.name, q.ask.line, req._replace(worker=q.wid, runner=q.r.name))
    live = live_workers(ctx.paths.data)
    q = q._replace(ask=q.ask._replace(policy=_decided_policy(q)))  # a host's too
    if req.host is not None or os.path.isdir(ctx.paths.hosts):
        there = _start_away(q, away, len(live))
        if there is not None:
            return there
    return _commit_here(q, _prepare_here(q, live))


class _Request(NamedTuple):
    """One worker start as asked (`ask`: its id normalised, its runner's name and worker line
    found and checked), with what the start reads it by."""

    ctx: Ctx
    knobs: Knobs
    cfg: Config
    r: Runner
    own_command: bool  # the caller's --command, not the runner's line
    ask: StartRequest

    @property
    def wid(self) -> str:
        return self.ask.worker


def _validated(ctx: Ctx, knobs: Knobs, req: StartRequest, cfg: Config) -> _Request:
    wid = normalise_target(req.worker)
    if req.steerable and req.decided:
        raise WorkerError(
            f"worker {wid}: only a human lets decisions steer a worker (`looop worker start "
            "--steerable`) — leave 'steerable' out of the decision"
        )
    if req.branch is not None and req.repo is None:
        raise WorkerError(f"worker {wid}: a branch needs a repo (--repo PATH or URL)")
    if not req.brief.strip():
        raise WorkerError(f"worker {wid}: the prompt is empty — give the worker a brief")
    r = cfg.runner(req.runner)
    if r is None:
        names = ", ".join(sorted(cfg.runners)) or "none"
        raise WorkerError(
            f"no runner '{req.runner or cfg.default}' in {cfg.source} (have: {names})"
        )
    command = req.command
    own = command is not None and bool(command.strip())
    if own:
        check_command(wid, str(command), req.decided)
    template = str(command) if own else r.worker
    if not template:
        raise WorkerError(f"runner '{r.name}' has no worker command — run `looop init`")
    if command is None and PLACEHOLDER not in template:
        raise WorkerError(
            f"runner '{r.name}' worker command lacks {PLACEHOLDER} — the brief "
            "would never reach the worker; fix it with `looop init`"
        )
    ask = req._replace(worker=wid, runner=r.name, line=template)
    return _Request(ctx, knobs, cfg, r, command is not None, ask)


def _start_away(q: _Request, away: Away | None, live: int) -> Started | None:
    """The start on the host it is placed on; None when placement keeps it here."""
    if away is None:  # never a silent start here for a worker meant for a host
        raise WorkerError(f"worker {q.wid}: this start has no way to hosts (none handed in)")
    ask = q.ask
    where = away.place(q.ctx, q.wid, ask.host, live, q.knobs.num("max_workers"), ask.repo)
    if where is None:
        return None
    for flag, asked in (("--resume", ask.resume), ("--steerable", ask.steerable)):
        if asked:
            raise WorkerError(
                f"worker {q.wid}: {flag} covers workers on this machine only, not on {where}"
            )
    # a worker line that gives the agent its conversation id gets one there too, and the
    # host records it with the runner's resume template (`looop restart` there)
    line_there, conv, find = plan_start(ask.line, q.r.resume)
    provenance.forget(q.ctx.paths, provenance.VERIFY, q.wid)  # the last worker's verify
    resumable = (q.r.resume, conv, find) if not q.own_command else (None, None, None)
    there = away.start_there(
        q.ctx, where, ask._replace(line=line_there, resumable=resumable), q.cfg
    )
    _vouch_verify(q.ctx, q.wid, ask.verify, ask.decided)
    return there


class _Here(NamedTuple):
    """What a start on this machine found while nothing had changed yet."""

    policy: SandboxPolicy
    env: dict[str, str]
    prog: str | None  # srt's path for a sandboxed start
    plans: tuple[Plan, ...]  # its worktrees' plans, for a repo worker (one per repo)
    clean: Tree | None  # the last run's worktree, clean: the reap removes it
    mcp_tools: bool
    setups: tuple[Setup | None, ...] = ()  # the config's setup for each repo, run in its worktree


def _prepare_here(q: _Request, live: list[Session]) -> _Here:
    """Every check of a start here, before anything changes: a duplicate, the fleet cap, srt,
    the repo and the mcp config each refuse it in one line."""
    if any(s.id == q.wid for s in live):
        raise WorkerError(
            f"worker {q.wid} is already running — steer it (`looop send {q.wid} …`) "
            f"or stop it (`looop kill {q.wid}`) first"
        )
    cap = q.knobs.num("max_workers")
    if cap > 0 and len(live) >= cap:
        raise WorkerError(
            f"fleet cap reached: {len(live)} live workers (LOOOP_MAX_WORKERS="
            f"{cap}); kill one or raise the cap"
        )
    policy = q.ask.policy if q.ask.policy is not None else _decided_policy(q)
    env = q.ctx.child_env({"LOOOP_SESSION_ID": q.wid, "LOOOP_RUNNER": q.r.name})
    # a stale lease is free, so a start refused after this leaves nothing held
    env["LOOOP_PORT"] = str(ports.lease(q.ctx.paths.data, q.wid, {s.id for s in live}, q.knobs))
    # srt's path, before anything changes (prepare uses it)
    prog = sbx.require(env, f"worker {q.wid}") if policy.on else None
    plans: list[Plan] = []
    clean, ask = None, q.ask
    if ask.repo is not None or wt.left_behind(q.ctx, q.wid):
        clean = wt.leftover(q.ctx, q.wid)
        if len(ask.repos) > 1:
            plans = workspace.plan_all(q.ctx, q.wid, ask.repos, ask.branch, ask.decided)
        elif ask.repo is not None:
            plans = [wt.plan(q.ctx, q.wid, ask.repo, ask.branch, ask.decided)]
    setups = tuple(setup_for(q.cfg.raw, p.repo, env.get("HOME")) for p in plans)
    # a bad "mcp" config is said before anything changes
    return _Here(policy, env, prog, tuple(plans), clean, mcp_tools_on(q.cfg), setups)


def _commit_here(q: _Request, h: _Here) -> Started:
    """Everything here changes the world: the last generation ends, the worktree, verify and
    brief are written, the line spawned; a failed spawn undoes what it made."""
    ctx, wid = q.ctx, q.wid
    reap(ctx.paths.data, wid)
    end_generation(ctx, wid, h.clean)
    trees = workspace.create_all(ctx, list(h.plans))
    tree = trees[0] if len(trees) == 1 else None  # several: the worker starts in their folder
    home = workspace.workspace(ctx, wid) if len(trees) > 1 else tree.path if tree else None
    # its room beside the data dir, as a box's: measured. Not a known CLI's (a preset's or a
    # --command running one), which asks "trust this folder?" of a new one: it starts where
    # its user trusted it, the data dir
    trusted = profile(program(q.ask.line)) is not None
    if home is None and not h.policy.on and not trusted:
        room = sbx.room(ctx, wid)
        home, h.env["TMPDIR"] = os.path.join(room, "work"), os.path.join(room, "tmp")
        for d in (home, h.env["TMPDIR"]):
            os.makedirs(d, mode=0o700, exist_ok=True)
    if home is not None:
        h.env["LOOOP_WORKSPACE"] = home
    try:
        for made, setup in zip(trees, h.setups, strict=True):
            _ready_tree(q, h, made, setup)
    except WorkerError:
        workspace.undo_all(ctx, trees)
        raise
    verify = q.ask.verify
    if verify is not None and verify.strip():
        store.atomic_write(ctx.paths.verify / f"{wid}.cmd", verify.strip() + "\n")
        _vouch_verify(ctx, wid, verify, q.ask.decided)
    prompt_path = _write_brief(q, h, trees)
    template, conv, find = plan_start(q.ask.line, q.r.resume)
    line = substitute_prompt_file(template, prompt_path)
    if h.mcp_tools:
        line = with_mcp(ctx, line, h.env)
    session = _spawn_or_undo(q, h, line, trees)
    cwd = home if home is not None else str(ctx.paths.data)
    word = "resume" if q.ask.resume else "never"
    note_start(
        ctx, wid, q.r.name, q.r.resume, conv, find, cwd, h.policy, word, h.env, bool(trees),
        steerable=q.ask.steerable, cli=program(q.ask.line),
    )  # fmt: skip
    branch: dict[str, object] = {"branch": trees[0].branch} if trees else {}
    if len(trees) > 1:
        branch["repos"] = [t.repo for t in trees]
    ctx.events.record("worker_started", id=wid, runner=q.r.name, sandbox=h.policy.on, **branch)
    return Started(session, q.r.name, str(prompt_path))


def _ready_tree(q: _Request, h: _Here, tree: Tree, setup: Setup | None) -> None:
    """The new worktree made ready to work in: what `.worktreeinclude` names copied, then the
    config's setup run there as the worker would run (in its sandbox when it has one)."""
    ctx = q.ctx
    _, said = copy_included(ctx.env, tree)
    for line in said:
        ctx.events.emit("warn", "worktree.include", f"worker {tree.wid}: {line}", session=tree.wid)
    if setup is None:
        return
    if h.policy.on and h.prog is not None:
        try:
            argv, env = sbx.prepare(
                ctx, q.wid, q.r.name, h.policy, setup.line, h.env, q.cfg.raw, (tree,), prog=h.prog
            )
        except (OSError, LooopError) as e:
            sbx.forget(ctx, q.wid)
            raise WorkerError(f"worker {q.wid}: cannot set up its sandbox: {e}") from e
        cwd = str(ctx.paths.data)  # srt starts there and its line goes into the worktree
    else:
        argv, env, cwd = ["bash", "-c", setup.line], h.env, tree.path
    try:
        run_setup(q.wid, setup, argv, env, cwd, log_dir(ctx.paths.sessions, q.wid))
    except WorkerError:
        if h.policy.on:
            sbx.forget(ctx, q.wid)
        raise
    if left := left_untracked(ctx.env, tree):  # the setup's: never the worker's work to land
        save(ctx, tree._replace(setup_left=left))


def _write_brief(q: _Request, h: _Here, trees: list[Tree]) -> Path:
    """prompts/<id>.md: the contract (with its worktrees' and a sandbox's notes), then the
    brief."""
    contract = contract_text(q.wid, q.r.name)
    if trees:
        contract = workspace.with_note(contract, trees, workspace.workspace(q.ctx, q.wid))
    if h.policy.on:
        contract = boxed.with_note(contract, q.wid)
    path = q.ctx.paths.prompts / f"{q.wid}.md"
    store.atomic_write(path, contract + q.ask.brief.rstrip("\n") + "\n")
    return path


def _spawn_or_undo(q: _Request, h: _Here, line: str, trees: list[Tree]) -> Session:
    """The spawn; a failed one takes back what the start made (its worktrees; after a failed
    session start also its verify command and sandbox settings). A worker of several repos
    starts in their folder (sandboxed: it writes each checkout, never the folder)."""
    ctx, wid = q.ctx, q.wid
    # a sandboxed srt starts in the data dir (it writes nothing there); its line goes on
    cwd = Path(h.env.get("LOOOP_WORKSPACE", ctx.paths.data)) if len(trees) != 1 else ctx.paths.data
    try:
        return spawn_line(
            ctx, q.knobs, wid, q.r.name, line, h.env, cwd, h.policy, q.cfg, trees, h.prog
        )
    except SandboxSetupError as e:
        workspace.undo_all(ctx, trees)
        raise WorkerError(f"worker {wid}: cannot set up its sandbox: {e}") from e
    except SessionError as e:
        store.remove(ctx.paths.verify / f"{wid}.cmd")
        if h.policy.on:
            sbx.forget(ctx, wid)
        workspace.undo_all(ctx, trees)
        raise WorkerError(f"worker {wid} did not start: {e}") from e


def _decided_policy(q: _Request) -> SandboxPolicy:
    """The worker's sandbox; a decision may turn it on, never loosen what the config set."""
    policy = resolve_sandbox(q.ask.sandbox, q.r.sandbox, q.cfg.sandbox)
    configured = resolve_sandbox(None, q.r.sandbox, q.cfg.sandbox)
    if q.ask.decided and configured.on and policy != configured:
        raise WorkerError(
            f"worker {q.wid}: the config runs '{q.r.name}' workers sandboxed and a decision "
            "cannot loosen that — a human can (`looop worker start --no-sandbox`, or the "
            "config's `sandbox`)"
        )
    return policy


def mcp_tools_on(cfg: Config) -> bool:
    """Whether the worker's agent CLI gets the contract as MCP tools (the config's
    mcp.worker_tools: off unless true, for the process it adds to every worker)."""
    return settings(cfg).worker_tools


def with_mcp(ctx: Ctx, line: str, env: dict[str, str]) -> str:
    """The worker line with `looop mcp --worker` in its CLI's own MCP config
    (workers/mcpwire.py), run as the worker's "$LOOOP_BIN" (inside a sandbox too)."""
    return wire(line, env, env.get("LOOOP_BIN") or ctx.bin)


class SandboxSetupError(Exception):
    """srt's settings could not be written (an OSError): nothing was started."""


def spawn_line(
    ctx: Ctx,
    knobs: Knobs,
    wid: str,
    runner: str,
    line: str,
    env: dict[str, str],
    cwd: Path,
    policy: SandboxPolicy,
    cfg: Config,
    trees: Sequence[Tree],
    prog: str | None,
) -> Session:
    """A worker line started as the session `wid`: inside srt when its policy is on (`prog`:
    srt's path, as sandbox.require found it), else as its own argv; in its worktree when it
    has one, else in `cwd`. A sandboxed srt itself starts in `cwd` and its line goes into the
    worktree (srt makes its placeholders in the folder it starts in: sandbox.prepare).
    `trees`: its checkouts; of a worker of several repos (`cwd` their folder) each one its
    box writes. SandboxSetupError or SessionError: the caller undoes what it made."""
    if policy.on:
        if prog is None:  # fail closed: a sandboxed worker never starts outside srt
            raise SandboxSetupError("srt was not looked up before the start")
        end_note = boxtty.note_path(ctx, wid)
        try:
            # inside, the same argv as unsandboxed, with looop's PTY as its terminal there
            box, box_tty = boxtty.box_line(end_note, worker_argv(line, env.get("PATH")), env)
            env = {**env, **boxed.box_env(line, env)}  # what its CLI would ask, answered
            argv, env = sbx.prepare(
                ctx, wid, runner, policy, box, env, cfg.raw, tuple(trees), prog=prog
            )
        except (OSError, LooopError) as e:  # LooopError: an endpoint it would refuse
            raise SandboxSetupError(str(e)) from e
    else:
        argv = worker_argv(line, env.get("PATH"))
        end_note, box_tty = None, False
    return spawn(
        ctx.paths.data,
        wid,
        argv,
        cwd=Path(trees[0].path) if len(trees) == 1 and not policy.on else cwd,
        env=env,
        size=WORKER_SIZE,
        host_idle_s=knobs.real("session_host_idle"),
        log_cap=knobs.log_cap(),
        end_note=end_note,
        box_tty=box_tty,
        bounds=(knobs.num("worker_max_pids"), knobs.num("worker_max_memory")),
    )


def _vouch_verify(ctx: Ctx, wid: str, verify: str | None, decided: bool) -> None:
    """A human's verify runs as configured; a decision's (no record) under run_shell's
    sandbox when it is on (workers/verify.py). Written after the command file: a crash
    between leaves it a decision's, which only sandboxes more."""
    if verify is not None and verify.strip() and not decided:
        cmd = store.encode(verify.strip())
        provenance.write(ctx.paths, provenance.VERIFY, wid, cmd, provenance.HUMAN)


KILL_WAIT_S = 10.0  # an attempt killed is waited on this long before its checkout goes


def roll_back(ctx: Ctx, ids: list[str]) -> list[str]:
    """The attempts started before one that could not start: each here stopped and taken
    back as a failed start is (its session, checkouts, records, the branches made for it);
    those on a host are returned, left as they run."""
    data = ctx.paths.data
    away = [wid for wid in ids if ctx.paths.host_record(wid).exists()]
    for wid in (w for w in ids if w not in away):
        with contextlib.suppress(SessionError):
            kill(data, wid)
            wait(data, wid, KILL_WAIT_S, ctx.clock)
        reap(data, wid)
        with contextlib.suppress(WorktreeError):
            workspace.undo_all(ctx, load_all(ctx, wid))
        end_generation(ctx, wid)
        unhold(str(data), wid)
        store.remove(ctx.paths.prompts / f"{wid}.md")
    return away
