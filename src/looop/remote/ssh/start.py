"""A worker's start on an SSH host: the satellite's `spawn` (its checkout, its sandbox, its
session, its resume record) and what `hello` refreshes (the shims live workers run).

Apart from remote/ssh/satellite.py because git, worktrees and srt cost a per-verb satellite
tens of milliseconds: `ls`, `screen`, `send` and the rest never load this module."""

from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.promptfile import substitute_prompt_file
from looop.home import store
from looop.home.errors import LooopError
from looop.home.sandboxpolicy import OFF, SandboxPolicy, parse_sandbox
from looop.remote import bounds
from looop.remote.repospec import check_branch, check_url, is_host_path
from looop.remote.shim import script
from looop.remote.ssh import boxed, hostverify
from looop.remote.ssh.link import PROTOCOL
from looop.remote.ssh.satellite import RELAY, worker_id, worker_row
from looop.sandbox import worker as sbx
from looop.sessions import spawner
from looop.sessions.state import Session, SessionError, get_session, reap
from looop.workers import bridge, startrecord, treerecord, workspace
from looop.workers import resume as rsm
from looop.workers import worktree as wt
from looop.workers.launch import SandboxSetupError, spawn_line, worker_argv
from looop.workers.mcpwire import wire
from looop.workers.review import diff_of


def start_verb(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    """The satellite's start verbs (`hello`, `spawn`, `verify`) and its change verb (`diff`: a
    worker's checkouts read here, workers/review.py; its review is act/landthere.py's)."""
    if op == "hello":
        relay = root / RELAY
        if req.get("fresh"):
            store.remove(relay)  # a dead master's forward: a fresh one binds it again
        root.mkdir(parents=True, exist_ok=True)
        refresh_shims(root, ctx.env.get("HOME", ""))
        return {
            "version": version,
            "protocol": PROTOCOL,
            "dir": str(root),
            "relay": str(relay),
            "python": sys.version.split()[0],
            "uid": os.geteuid(),
            "sandbox_missing": boxed.missing(dict(ctx.env)),  # what keeps srt from running here
        }
    if op == "spawn":
        sid = worker_id(req)
        s, trees = spawn(ctx, root, sid, req, root / RELAY)
        return {"row": worker_row(root, s, ctx.clock), "trees": [t._asdict() for t in trees]}
    if op == "verify":
        return hostverify.verify(ctx, req)
    if op == "diff":
        return diff_of(ctx, worker_id(req))
    raise LooopError(f"unknown satellite verb {op!r}")


def refresh_shims(root: Path, home: str) -> None:
    """A fresh link may follow an upgrade: the shims live workers run are rewritten for the
    looop now installed (a shim naming a module that moved would fail their contract verbs)."""
    body = script(sys.executable).encode()
    for path in (root / "bin" / "looop", Path(home, boxed.SHIM_DIR, "looop") if home else None):
        if path is not None and path.is_file() and store.write_if_changed(path, body):
            os.chmod(path, 0o755)


def _home_gone(fd: int = 1) -> bool:
    """The connection that asked is gone (the read end of our stdout closed): the home has
    taken its record back, so a start it can no longer hear about must not go on."""
    p = select.poll()
    try:
        p.register(fd, select.POLLOUT)
        got = p.poll(0)
    except (OSError, ValueError):
        return False
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in got)


def _opt(req: dict[str, Any], key: str) -> str | None:
    v = req.get(key)
    if v is not None and not isinstance(v, str):
        raise LooopError(f"a spawn's {key} must be text")
    return v


MAX_REPOS = 8  # as a start at home takes (act/moves/workers.py)


def _repos(req: dict[str, Any], sid: str) -> tuple[str, ...]:
    """A worker of several repositories: each an absolute path of a repository here (a
    workspace holds worktrees, never clones); () for one repo or none."""
    raw = req.get("repos")
    if raw is None:
        return ()
    if (
        not isinstance(raw, list)
        or not 2 <= len(raw) <= MAX_REPOS
        or not all(isinstance(r, str) for r in raw)
    ):
        raise LooopError(f"worker {sid}: a spawn's repos must be 2 to {MAX_REPOS} paths")
    for r in raw:
        if not is_host_path(r):
            raise LooopError(
                f"worker {sid}: of several repositories each must be the absolute path of a "
                "repository on this host — clone the URL here first, or start one worker for it"
            )
    return tuple(raw)


def _workspace_plan(
    ctx: Ctx, sid: str, repos: tuple[str, ...], repo: str | None, branch: str | None
) -> tuple[treerecord.Tree | None, list[wt.Plan] | wt.ClonePlan | None]:
    """Everything the worker's checkouts need, checked before anything changes: a worktree
    of a repository on this host (a path) or of each of `repos` side by side, or a clone of
    a URL; None without a repo. The last worker of this id's checkout, when it holds work,
    is refused here too."""
    if branch is not None:
        if repo is None and not repos:
            raise LooopError(f"worker {sid}: a branch needs a repo")
        check_branch(branch)
    clean = None
    if repo is not None or repos or os.path.lexists(wt.tree_path(ctx, sid)):
        clean = wt.leftover(ctx, sid)
    if repos:
        return clean, workspace.plan_all(ctx, sid, repos, branch, False)
    if repo is None:
        return clean, None
    if is_host_path(repo):
        return clean, [wt.plan(ctx, sid, repo, branch)]
    check_url(repo, "this host", "or give the absolute path of a repository here")
    return clean, wt.plan_clone(ctx, sid, repo, branch)


def spawn(
    ctx: Ctx, root: Path, sid: str, req: dict[str, Any], relay: Path
) -> tuple[Session, list[treerecord.Tree]]:
    """The satellite's `spawn`: the worker `sid` started here (its checkouts, its box, its
    session); its session and its checkouts' records (one, one of each of several repos, or
    none). `relay`: the socket its shim talks to."""
    line, prompt, extra = req.get("line"), req.get("prompt"), req.get("env")
    if not isinstance(line, str) or not isinstance(prompt, str) or not isinstance(extra, dict):
        raise LooopError("a spawn needs line, prompt and env")
    repo, branch, _ = _opt(req, "repo"), _opt(req, "branch"), _opt(req, "contract")
    try:
        if get_session(root, sid).alive:
            raise LooopError(f"worker {sid} is already running on this host")
    except SessionError:
        pass
    bounds.taken(req.get("bounds"), sid, ctx.default_knobs())  # a bad one refused here, first
    box = _box(ctx, sid, req)
    clean, plan = _workspace_plan(ctx, sid, _repos(req, sid), repo, branch)

    # commit: the last worker of this id ends here for good
    reap(root, sid)
    hostverify.forget(root, sid)
    if os.path.exists(ctx.paths.worktrees / f"{sid}.json"):
        wt.release(ctx, sid, clean)
    trees: list[treerecord.Tree] = []
    if isinstance(plan, list):
        trees = workspace.create_all(ctx, plan)
    elif isinstance(plan, wt.ClonePlan):
        trees = [wt.clone(ctx, plan)]
    try:
        if _home_gone():
            raise LooopError(f"worker {sid}: the home stopped listening during the start")
        s = _start(ctx, root, sid, req, trees, box, relay)
    except (LooopError, SessionError, OSError):
        workspace.undo_all(ctx, trees)
        raise
    return s, trees


@dataclass(frozen=True)
class Box:
    """A sandboxed start's parts, checked before anything changes: its policy (as the home
    resolved it) and srt's path here."""

    policy: SandboxPolicy
    prog: str


def _box(ctx: Ctx, sid: str, req: dict[str, Any]) -> Box | None:
    raw = req.get("sandbox")
    if raw is None or raw == "off":
        return None
    try:
        policy = parse_sandbox(raw, "sandbox")
    except ValueError:
        raise LooopError(f"worker {sid}: the home sent a sandbox this host cannot read") from None
    if not policy.on:
        return None
    host = _opt(req, "host") or "this host"
    return Box(policy, boxed.require(dict(ctx.env), sid, host))


def _start(
    ctx: Ctx,
    root: Path,
    sid: str,
    req: dict[str, Any],
    trees: list[treerecord.Tree],
    box: Box | None,
    relay: Path,
) -> Session:
    """The worker's session (its request checked by spawn), with its resume record as a start
    at home writes it (`looop restart ID`, run here by the home, resumes its conversation)."""
    folder = workspace.workspace(ctx, sid)  # a worker of several repos starts there
    prompt, contract = str(req["prompt"]), _opt(req, "contract")
    if contract is not None:  # apart: a checkout's note is its last rule
        prompt = (workspace.with_note(contract, trees, folder) if trees else contract) + prompt
    prompt_path = root / "prompts" / f"{sid}.md"
    store.atomic_write(prompt_path, prompt)
    tree = trees[0] if len(trees) == 1 else None
    work = Path(tree.path if tree else folder) if trees else root / "work" / sid
    work.mkdir(parents=True, exist_ok=True)
    env, away = _env(ctx, root, sid, req["env"], work, box, relay)
    line = substitute_prompt_file(str(req["line"]), prompt_path)
    if req.get("mcp") is True:  # `looop mcp --worker` in its CLI's MCP config, as "$LOOOP_BIN"
        line = wire(line, env, env["LOOOP_BIN"])
    if box is not None:
        (s, policy), cwd = _start_boxed(ctx, root, sid, line, env, box, trees, req), root
    else:
        knobs = bounds.taken(req.get("bounds"), sid, ctx.knobs())
        size = req.get("size") or [120, 40]
        s = spawner.spawn(
            root,
            sid,
            worker_argv(line, env["PATH"]),
            cwd=work,
            env=env,
            size=(int(size[0]), int(size[1])),
            host_idle_s=knobs.real("session_host_idle"),
            log_cap=knobs.log_cap(),
            bounds=(knobs.num("worker_max_pids"), knobs.num("worker_max_memory")),
        )
        policy, cwd = OFF, work
    # the runner's resume template, the id the home gave it (or which CLI's files name one)
    resume, conv, find = _opt(req, "resume"), _opt(req, "conversation"), _opt(req, "find")
    conv = conv if conv is not None and rsm.valid_id(conv) else None
    find = find if find in startrecord.FINDERS else None
    runner = str(env.get("LOOOP_RUNNER", ""))
    rsm.note_start(
        ctx, sid, runner, resume, conv, find, str(cwd), policy, "never", env, bool(trees), away
    )
    return s


def _env(
    ctx: Ctx, root: Path, sid: str, extra: dict[str, Any], work: Path, box: Box | None, relay: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """The worker's env, and what of it this satellite adds (a resume here gives it again:
    workers/resume.py)."""
    ctx.paths.reports.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in ctx.env.items() if not k.startswith("LOOOP_")}
    env.update({str(k): str(v) for k, v in extra.items()})
    shim = boxed.shim(str(root / "bin"))
    if box is not None:  # inside srt: a shim outside every satellite, which are hidden there
        shim = boxed.shim(os.path.join(env.get("HOME", ""), boxed.SHIM_DIR))
    away = {"PATH": shim + os.pathsep + ctx.env.get("PATH", "/usr/bin:/bin")}
    away["LOOOP_BIN"] = os.path.join(shim, "looop")  # the contract says "$LOOOP_BIN" claim …
    away |= {"LOOOP_DATA_DIR": str(root), "LOOOP_REAL_BIN": ctx.bin, "LOOOP_WORKSPACE": str(work)}
    away["LOOOP_REPORTS_DIR"] = str(ctx.paths.reports)  # the contract's deliverables, here
    if box is None:
        away["LOOOP_RELAY_SOCK"] = str(relay)
    else:  # a socket it may not open: its drop box instead; a resume here runs the same srt
        away |= {"LOOOP_CALLHOME_DIR": str(boxed.callhome_dir(root, sid)), "LOOOP_SRT": box.prog}
    return env | away, away


def _start_boxed(
    ctx: Ctx,
    root: Path,
    sid: str,
    line: str,
    env: dict[str, str],
    box: Box,
    trees: list[treerecord.Tree],
    req: dict[str, Any],
) -> tuple[Session, SandboxPolicy]:
    """The worker inside srt, as a start at home runs it (launch.spawn_line: the same policy
    built against this data dir, the pty relay, the worktree's walls), its contract verbs
    going home through its drop box and this satellite's bridge (remote/ssh/boxed.py); its
    session and the policy it runs under."""
    policy = boxed.host_policy(box.policy, root, sid, env.get("HOME", ""))
    drop = boxed.callhome_dir(root, sid)
    drop.mkdir(parents=True, exist_ok=True)
    for old in drop.iterdir():  # the last run's requests say nothing now
        store.remove(old)
    bridge.ensure_bridge(root, ctx.bin, {k: v for k, v in ctx.env.items()})
    cfg = ctx.config()
    knobs = bounds.taken(req.get("bounds"), sid, ctx.knobs(cfg))
    runner = str(env.get("LOOOP_RUNNER", ""))
    try:
        s = spawn_line(ctx, knobs, sid, runner, line, env, root, policy, cfg, trees, box.prog)
    except SandboxSetupError as e:
        sbx.forget(ctx, sid)
        raise LooopError(f"worker {sid}: cannot set up its sandbox: {e}") from e
    return s, policy
