"""The remote end: `looop satellite KEY OP` on a host, JSON in on stdin, JSON out on stdout.

Each home has its own satellite data dir on the host (`~/.local/share/looop/satellite/KEY`),
where the SAME PTY supervisors of `sessions/` run its workers; the home never parses human
output. Versioned: a request of another protocol is refused in one line."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.presets import substitute_prompt_file
from looop.core.sandboxpolicy import SandboxPolicy
from looop.hot import store
from looop.hot.errors import LooopError
from looop.hot.logs import read_log
from looop.hot.workerrows import last_output
from looop.remote.ssh.link import PROTOCOL, SATELLITES
from looop.remote.ssh.shim import script
from looop.sessions import client
from looop.sessions.state import Session, SessionError, get_session, list_sessions, reap, wait_code

TYPE_CHECKING = False  # not `from typing`: `ls`, the op every `looop ls` asks, stays light
if TYPE_CHECKING:
    from looop.workers import treerecord
    from looop.workers import worktree as wt

KEY_RE = re.compile(r"[0-9a-f]{16}")
RELAY = "relay.sock"
# What a remote worker's own `looop` sends home (remote/ssh/shim.py), the rest runs here.
RELAYED = ("ask", "claim", "unclaim", "tell", "told", "cost")


def satellite_dir(env: dict[str, str], key: str) -> Path:
    if not KEY_RE.fullmatch(key):
        raise LooopError(f"bad satellite key {key!r} (16 hex digits)")
    home = env.get("HOME", "")
    if not home.startswith("/"):
        raise LooopError("HOME is not set on this host: the satellite has nowhere to live")
    return Path(home) / SATELLITES / key


def _row(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "state": s.state,
        "alive": s.alive,
        "exit_code": wait_code(s) if not s.alive else None,
        "label": s.label,
        "note": s.note,
        "started_at": s.started_at,
        "last_change": s.last_change,
        "last_output_unix": last_output(str(s.dir)),
    }


def _shim(d: Path, real: str) -> str:
    """`looop` on a remote worker's PATH: the contract verbs go home, the rest run here."""
    path = d / "bin" / "looop"
    store.write_if_changed(path, script(sys.executable).encode())
    os.chmod(path, 0o755)
    return str(path.parent)


def _refresh_shims(root: Path, home: str) -> None:
    """A fresh link may follow an upgrade: the shims live workers run are rewritten for the
    looop now installed (a shim naming a module that moved would fail their contract verbs)."""
    from looop.remote.ssh.boxed import SHIM_DIR  # lazy: only a fresh link looks

    body = script(sys.executable).encode()
    for path in (root / "bin" / "looop", Path(home, SHIM_DIR, "looop") if home else None):
        if path is not None and path.is_file() and store.write_if_changed(path, body):
            os.chmod(path, 0o755)


def handle(ctx: Ctx, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if req.get("v") != PROTOCOL:
        return {"error": f"this host's looop {version} speaks satellite protocol {PROTOCOL}"}
    root = ctx.paths.data
    try:
        return _handle(ctx, root, op, req, version)
    except (SessionError, LooopError) as e:
        return {"error": str(e)}


def _sid(req: dict[str, Any]) -> str:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.sessions.state import validate_id  # the same check as every verb

    sid = req.get("id")
    if not isinstance(sid, str):
        raise LooopError("the request names no worker id")
    return validate_id(sid)


def _handle(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    if op == "hello":
        relay = root / RELAY
        if req.get("fresh"):
            store.remove(relay)  # a dead master's forward: a fresh one binds it again
        root.mkdir(parents=True, exist_ok=True)
        _refresh_shims(root, ctx.env.get("HOME", ""))
        return {
            "version": version,
            "protocol": PROTOCOL,
            "dir": str(root),
            "relay": str(relay),
            "python": sys.version.split()[0],
            "uid": os.geteuid(),
            "sandbox_missing": _sandbox_missing(ctx),
        }
    if op == "ls":
        return {"workers": [_row(s) for s in list_sessions(root)]}
    if op == "spawn":
        return _spawn(ctx, root, req)
    if op == "verify":
        from looop.remote.ssh import hostverify  # lazy: only a worker's end runs one

        return hostverify.verify(ctx, req)
    sid = _sid(req)
    if op == "reach":
        try:
            s = get_session(root, sid)
        except SessionError:
            return {"reach": "over", "exit_code": None}
        return {"reach": "alive" if s.alive else "over", "exit_code": wait_code(s)}
    if op == "screen":
        return client.screenshot(root, sid, str(req.get("format", "plain")), bool(req.get("trim")))
    if op == "log":
        text, off = read_log(root, sid, int(req.get("since", 0)), bool(req.get("raw")))
        return {"text": text, "offset": off}
    if op == "send":
        return client.send(root, sid, str(req.get("text", "")), bool(req.get("newline")))
    if op == "key":
        names = req.get("names")
        return client.send_keys(root, sid, [str(n) for n in names or []])
    if op == "kill":
        try:
            return client.kill(root, sid)
        except SessionError:
            return {"killed": False}
    if op == "restart":
        return client.restart(root, sid)
    if op == "wait":
        t = req.get("timeout")
        return {"code": client.wait(root, sid, float(t) if t is not None else None, ctx.clock)}
    raise LooopError(f"unknown satellite verb {op!r}")


def _sandbox_missing(ctx: Ctx) -> list[str]:
    """What keeps srt from running here (`host check` says it; [] = ready)."""
    from looop.remote.ssh import boxed  # lazy: only hello asks

    return boxed.missing(dict(ctx.env))


def _home_gone(fd: int = 1) -> bool:
    """The connection that asked is gone (the read end of our stdout closed): the home has
    taken its record back, so a start it can no longer hear about must not go on."""
    import select  # lazy: only a start asks

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


def _workspace_plan(
    ctx: Ctx, sid: str, repo: str | None, branch: str | None
) -> tuple[treerecord.Tree | None, wt.Plan | wt.ClonePlan | None]:
    """Everything the worker's checkout needs, checked before anything changes: a worktree
    of a repository on this host (a path), or a clone of a URL; None without a repo. The
    last worker of this id's checkout, when it holds work, is refused here too."""
    # lazy: only a start reads git and the repo rules (`ls` stays light)
    from looop.remote.repospec import check_branch, check_url, is_host_path
    from looop.workers import worktree as wt

    if branch is not None:
        if repo is None:
            raise LooopError(f"worker {sid}: a branch needs a repo")
        check_branch(branch)
    clean = None
    if repo is not None or os.path.lexists(wt.tree_path(ctx, sid)):
        clean = wt.leftover(ctx, sid)
    if repo is None:
        return clean, None
    if is_host_path(repo):
        return clean, wt.plan(ctx, sid, repo, branch)
    check_url(repo, "this host", "or give the absolute path of a repository here")
    return clean, wt.plan_clone(ctx, sid, repo, branch)


def _spawn(ctx: Ctx, root: Path, req: dict[str, Any]) -> dict[str, Any]:
    # lazy: only a start reads git and runs verifies' bookkeeping (`ls` stays light)
    from looop.remote.ssh import hostverify
    from looop.workers import worktree as wt

    sid = _sid(req)
    line, prompt, extra = req.get("line"), req.get("prompt"), req.get("env")
    if not isinstance(line, str) or not isinstance(prompt, str) or not isinstance(extra, dict):
        raise LooopError("a spawn needs line, prompt and env")
    repo, branch, contract = _opt(req, "repo"), _opt(req, "branch"), _opt(req, "contract")
    try:
        if get_session(root, sid).alive:
            raise LooopError(f"worker {sid} is already running on this host")
    except SessionError:
        pass
    box = _box(ctx, sid, req)
    clean, plan = _workspace_plan(ctx, sid, repo, branch)

    # commit: the last worker of this id ends here for good
    reap(root, sid)
    hostverify.forget(root, sid)
    if os.path.exists(ctx.paths.worktrees / f"{sid}.json"):
        wt.release(ctx, sid, clean)
    tree = None
    if isinstance(plan, wt.Plan):
        tree = wt.create(ctx, plan)
    elif isinstance(plan, wt.ClonePlan):
        tree = wt.clone(ctx, plan)
    try:
        if _home_gone():
            raise LooopError(f"worker {sid}: the home stopped listening during the start")
        row = _start(ctx, root, sid, line, contract, prompt, extra, req, tree, box)
    except (LooopError, SessionError, OSError):
        if tree is not None:
            wt.undo(ctx, tree)
        raise
    return {"row": row, "tree": asdict(tree) if tree is not None else None}


class Box:
    """A sandboxed start's parts, checked before anything changes: its policy (as the home
    resolved it) and srt's path here."""

    def __init__(self, policy: SandboxPolicy, prog: str) -> None:
        self.policy = policy
        self.prog = prog


def _box(ctx: Ctx, sid: str, req: dict[str, Any]) -> Box | None:
    raw = req.get("sandbox")
    if raw is None or raw == "off":
        return None
    # lazy: only a sandboxed start reads the policy and srt
    from looop.core.sandboxpolicy import parse_sandbox
    from looop.remote.ssh import boxed

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
    line: str,
    contract: str | None,
    prompt: str,
    extra: dict[str, Any],
    req: dict[str, Any],
    tree: treerecord.Tree | None,
    box: Box | None = None,
) -> dict[str, Any]:
    # lazy: only a start needs the argv rules and the note
    from looop.workers import worktree as wt
    from looop.workers.launch import worker_argv

    if contract is not None:  # the contract apart: a checkout's note goes in as its last rule
        prompt = (wt.with_note(contract, tree) if tree is not None else contract) + prompt
    prompt_path = root / "prompts" / f"{sid}.md"
    store.atomic_write(prompt_path, prompt)
    work = Path(tree.path) if tree is not None else root / "work" / sid
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in ctx.env.items() if not k.startswith("LOOOP_")}
    env.update({str(k): str(v) for k, v in extra.items()})
    real = ctx.bin
    shim = _shim(root, real)
    env["PATH"] = shim + os.pathsep + ctx.env.get("PATH", "/usr/bin:/bin")
    env["LOOOP_BIN"] = os.path.join(shim, "looop")  # the contract says "$LOOOP_BIN" claim …
    env["LOOOP_DATA_DIR"] = str(root)
    env["LOOOP_REAL_BIN"] = real
    env["LOOOP_RELAY_SOCK"] = str(root / RELAY)
    env["LOOOP_WORKSPACE"] = str(work)
    env["LOOOP_REPORTS_DIR"] = str(ctx.paths.reports)  # the contract's deliverables, here
    ctx.paths.reports.mkdir(parents=True, exist_ok=True)
    real_line = substitute_prompt_file(line, prompt_path)
    size = req.get("size") or [120, 40]
    if box is not None:
        return _start_boxed(ctx, root, sid, real_line, env, box, tree, req)
    argv = worker_argv(_wired(req, real_line, env), env["PATH"])
    s = client.spawn(
        root,
        sid,
        argv,
        cwd=work,
        env=env,
        size=(int(size[0]), int(size[1])),
        host_idle_s=ctx.knobs().real("session_host_idle"),
        log_cap=ctx.knobs().log_cap(),
    )
    _note_start(ctx, sid, req, env, str(work), None, tree)
    return _row(s)


# what a satellite adds to a worker's env: a resume here gives it again (workers/resume.py)
_AWAY = (
    "PATH",
    "LOOOP_BIN",
    "LOOOP_DATA_DIR",
    "LOOOP_REAL_BIN",
    "LOOOP_RELAY_SOCK",
    "LOOOP_CALLHOME_DIR",
    "LOOOP_WORKSPACE",
    "LOOOP_REPORTS_DIR",
    "LOOOP_SRT",
)


def _note_start(
    ctx: Ctx,
    sid: str,
    req: dict[str, Any],
    env: dict[str, str],
    cwd: str,
    policy: SandboxPolicy | None,
    tree: treerecord.Tree | None,
) -> None:
    """The worker's resume record, as a start at home writes it (`looop restart ID`, run
    here by the home, resumes its conversation): the runner's resume template, the id the
    home gave it (or which CLI's files name one), and what this satellite adds to its env."""
    # lazy: only a start writes one
    from looop.core.sandboxpolicy import OFF
    from looop.workers import resume as rsm

    resume, conv, find = _opt(req, "resume"), _opt(req, "conversation"), _opt(req, "find")
    if conv is not None and not rsm.valid_id(conv):
        conv = None
    if find not in ("codex", "opencode"):
        find = None
    runner = str(env.get("LOOOP_RUNNER", ""))
    away = {k: env[k] for k in _AWAY if k in env}
    rsm.note_start(
        ctx,
        sid,
        runner,
        resume,
        conv,
        find,
        cwd,
        policy or OFF,
        "never",
        env,
        tree is not None,
        away,
    )


def _wired(req: dict[str, Any], line: str, env: dict[str, str]) -> str:
    """The line with `looop mcp --worker` in its CLI's MCP config when the home asked for it
    (its config's mcp.worker_tools), run as this host's "$LOOOP_BIN": the shim that sends the
    contract verbs home."""
    if req.get("mcp") is not True:
        return line
    from looop.workers.mcpwire import wire  # lazy: only a wired start

    return wire(line, env, env["LOOOP_BIN"])


def _start_boxed(
    ctx: Ctx,
    root: Path,
    sid: str,
    line: str,
    env: dict[str, str],
    box: Box,
    tree: treerecord.Tree | None,
    req: dict[str, Any],
) -> dict[str, Any]:
    """The worker inside srt, as a start at home runs it (launch.spawn_line: the same policy
    built against this data dir, the pty relay, the worktree's walls), its contract verbs
    going home through its drop box and this satellite's bridge (remote/ssh/boxed.py)."""
    # lazy: only a sandboxed start needs these
    from looop.remote.ssh import boxed
    from looop.workers import bridge
    from looop.workers import sandbox as sbx
    from looop.workers.launch import SandboxSetupError, spawn_line

    home = env.get("HOME", "")
    policy = boxed.host_policy(box.policy, root, sid, home)
    drop = boxed.callhome_dir(root, sid)
    drop.mkdir(parents=True, exist_ok=True)
    for old in drop.iterdir():  # the last run's requests say nothing now
        store.remove(old)
    shim = boxed.shim(sys.executable, home)
    env["PATH"] = shim + os.pathsep + ctx.env.get("PATH", "/usr/bin:/bin")
    env["LOOOP_BIN"] = os.path.join(shim, "looop")
    env["LOOOP_CALLHOME_DIR"] = str(drop)
    env.pop("LOOOP_RELAY_SOCK", None)  # a socket it may not open: the drop box instead
    env["LOOOP_SRT"] = box.prog  # a resume here runs the same srt
    if tree is not None:
        env["LOOOP_WORKSPACE"] = tree.path
    bridge.ensure_bridge(root, ctx.bin, {k: v for k, v in ctx.env.items()})
    runner = str(env.get("LOOOP_RUNNER", ""))
    cfg = ctx.config()
    line = _wired(req, line, env)
    try:
        s = spawn_line(
            ctx, ctx.knobs(cfg), sid, runner, line, env, root, policy, cfg, tree, box.prog
        )
    except SandboxSetupError as e:
        sbx.forget(ctx, sid)
        raise LooopError(f"worker {sid}: cannot set up its sandbox: {e}") from e
    _note_start(ctx, sid, req, env, str(root), policy, tree)
    return _row(s)
