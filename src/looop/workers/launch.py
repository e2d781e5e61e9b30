"""Start a worker: validate everything first, then commit (prompt file, verify, spawn)."""

from __future__ import annotations

import os
import shlex
import shutil
import string
from pathlib import Path

from looop.core import provenance, store
from looop.core.config import (
    PLACEHOLDER,
    Config,
    Knobs,
    removed_placeholder,
    substitute_prompt_file,
)
from looop.core.context import Ctx
from looop.core.errors import LooopError
from looop.core.sandboxpolicy import SandboxPolicy
from looop.core.sandboxpolicy import resolve as resolve_sandbox
from looop.core.where import SANDBOX_SETTINGS
from looop.sessions import Session, SessionError, list_sessions, reap, spawn
from looop.sessions import validate_id as validate_session_id
from looop.workers.started import Started

TYPE_CHECKING = False  # not `from typing`: a worker start stays light

if TYPE_CHECKING:
    from looop.workers.started import Away
    from looop.workers.worktree import Tree

PULSE = "pulse"
WORKER_SIZE = (120, 40)  # agent TUIs render better than at 80x24; shots stay readable


class WorkerError(LooopError):
    pass


def contract_text(worker_id: str, runner: str) -> str:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract.md")
    try:
        with open(here, encoding="utf-8") as f:
            raw = f.read()
    except OSError:  # not unpacked on disk (a zip): ask the package loader
        from importlib import resources  # lazy: costs a worker start ~3 ms

        raw = (resources.files("looop.workers") / "contract.md").read_text(encoding="utf-8")
    return raw.replace("__ID__", worker_id).replace("__RUNNER__", runner)


def strip_legacy_prefix(sid: str) -> str:
    """Old prompts spelled worker ids `looop-<id>`."""
    sid = sid.strip()
    return sid[len("looop-") :] if sid.startswith("looop-") else sid


def normalise_target(sid: str) -> str:
    """A worker id as the verbs take it: legacy `looop-` prefix stripped; pulse refused."""
    sid = strip_legacy_prefix(sid)
    if sid == PULSE:
        raise WorkerError(
            "`pulse` is the control loop, not a worker — watch it with "
            "`looop log pulse -f`, stop it with `looop down`"
        )
    return validate_session_id(sid)


def live_workers(ctx: Ctx) -> list[Session]:
    """Fail closed: an unreadable fleet is an error on gating paths, never an empty fleet."""
    try:
        return [s for s in list_sessions(ctx.paths.data) if s.id != PULSE and s.alive]
    except OSError as e:
        raise WorkerError(f"cannot list sessions in {ctx.paths.sessions}: {e.strerror}") from e


# Characters that mean nothing to bash outside a handful of contexts excluded below: a line made
# only of these (plus quotes, which shlex reads as bash does when no `$`, backquote or
# backslash is inside) is one plain command.
_PLAIN = frozenset(string.ascii_letters + string.digits + "_-./:,=+@%^ \t'\"")
_SHELL_WORDS = frozenset(
    {
        "!",
        "[[",
        "]]",
        "{",
        "}",
        ".",
        ":",
        "alias",
        "bg",
        "bind",
        "break",
        "builtin",
        "case",
        "cd",
        "command",
        "compgen",
        "complete",
        "continue",
        "declare",
        "dirs",
        "disown",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "enable",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "fi",
        "for",
        "function",
        "getopts",
        "hash",
        "help",
        "history",
        "if",
        "in",
        "jobs",
        "kill",
        "let",
        "local",
        "logout",
        "mapfile",
        "popd",
        "printf",
        "pushd",
        "pwd",
        "read",
        "readarray",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "shopt",
        "source",
        "suspend",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    }
)


def worker_argv(line: str, path: str | None) -> list[str]:
    """The worker's argv. A line that is one plain command (no expansion, redirection,
    operator, assignment or shell builtin) whose program is on `path` runs as its own
    words, so no shell stays behind as a wrapper; anything else runs as `bash -c LINE` (bash
    execs a last simple command in place, so a `"$(cat prompt)"` line leaves no wrapper
    either, and a missing program ends the worker with 127 and bash's message, as ever)."""
    words = plain_words(line)
    if words is not None and shutil.which(words[0], path=path or "") is not None:
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
    worker_id: str,
    prompt: str,
    *,
    runner: str | None = None,
    command: str | None = None,
    verify: str | None = None,
    cfg: Config | None = None,
    sandbox: SandboxPolicy | None = None,
    decided: bool = False,
    repo: str | None = None,
    branch: str | None = None,
    resume: bool = False,
    host: str | None = None,
    away: Away | None = None,
) -> Started:
    """cfg: the beat's config when a decision starts the worker (None reads the file);
    sandbox: this worker's own setting (None: the runner's, else the config's); decided: the
    pulse's own move, which may turn the sandbox on but never loosen what the config set;
    repo/branch: run it in its own git worktree of `repo` (workers/worktree.py); resume:
    `looop up` starts it again on its conversation if its session dies without an end;
    host: a registered host's name (SSH or Kubernetes), "local" for this machine, None:
    placed by remote/place.py's rule when hosts are registered (here otherwise); away: the
    way to hosts (remote/dispatch.py), needed once hosts are registered."""
    wid = normalise_target(worker_id)
    if branch is not None and repo is None:
        raise WorkerError(f"worker {wid}: a branch needs a repo (--repo PATH or URL)")
    if not prompt.strip():
        raise WorkerError(f"worker {wid}: the prompt is empty — give the worker a brief")
    if cfg is None:
        cfg = ctx.config()
    r = cfg.runner(runner)
    if r is None:
        names = ", ".join(sorted(cfg.runners)) or "none"
        raise WorkerError(f"no runner '{runner or cfg.default}' in {cfg.source} (have: {names})")
    template = command if command is not None and command.strip() else r.worker
    if command is not None and command.strip():
        check_command(wid, command, decided)
    if not template:
        raise WorkerError(f"runner '{r.name}' has no worker command — run `looop init`")
    if command is None and PLACEHOLDER not in template:
        raise WorkerError(
            f"runner '{r.name}' worker command lacks {PLACEHOLDER} — the brief "
            "would never reach the worker; fix it with `looop init`"
        )
    cap = knobs.num("max_workers")
    live = live_workers(ctx)
    _decided_policy(wid, r.name, sandbox, r.sandbox, cfg, decided)  # on a host too
    if host is not None or os.path.isdir(ctx.paths.data / "hosts"):
        if away is None:  # never a silent start here for a worker meant for a host
            raise WorkerError(f"worker {wid}: this start has no way to hosts (none handed in)")
        where = away.place(ctx, wid, host, len(live), cap, repo)
        if where is not None:
            if resume:
                raise WorkerError(
                    f"worker {wid}: --resume covers workers on this machine only, not on {where}"
                )
            from looop.workers.resume import plan_start  # lazy: a cycle (resume starts workers)

            # a worker line that gives the agent its conversation id gets one there too, and
            # the host records it with the runner's resume template (`looop restart` there)
            line_there, conv, find = plan_start(template, r.resume)
            provenance.forget(ctx.paths, provenance.VERIFY, wid)  # the last worker's verify
            there = away.start_there(
                ctx,
                where,
                wid,
                line_there,
                prompt,
                r.name,
                repo,
                sandbox,
                r.sandbox,
                cfg,
                branch,
                verify,
                (r.resume, conv, find) if command is None else (None, None, None),
            )
            _vouch_verify(ctx, wid, verify, decided)
            return there
    if any(s.id == wid for s in live):
        raise WorkerError(
            f"worker {wid} is already running — steer it (`looop send {wid} …`) "
            f"or stop it (`looop kill {wid}`) first"
        )
    if cap > 0 and len(live) >= cap:
        raise WorkerError(
            f"fleet cap reached: {len(live)} live workers (LOOOP_MAX_WORKERS="
            f"{cap}); kill one or raise the cap"
        )

    policy = _decided_policy(wid, r.name, sandbox, r.sandbox, cfg, decided)
    env = ctx.child_env({"LOOOP_SESSION_ID": wid, "LOOOP_RUNNER": r.name})
    prog: str | None = None
    if policy.on:
        from looop.workers import sandbox as sbx  # lazy: only a sandboxed start needs it

        prog = sbx.require(env, f"worker {wid}")  # before anything changes; prepare uses it
    plan = None
    clean: Tree | None = None  # the last run's worktree, clean: the reap below removes it
    if repo is not None or os.path.lexists(ctx.paths.worktrees / wid):
        from looop.workers import worktree as wt  # lazy: only a repo worker runs git

        clean = wt.leftover(ctx, wid)
        if repo is not None:
            plan = wt.plan(ctx, wid, repo, branch)

    mcp_tools = mcp_tools_on(cfg)  # a bad "mcp" config is said before anything changes

    # commit: everything below changes the world
    reap(ctx.paths.data, wid)
    end_generation(ctx, wid, clean)
    tree: Tree | None = None
    if plan is not None:
        tree = wt.create(ctx, plan)
        env["LOOOP_WORKSPACE"] = tree.path
    if verify is not None and verify.strip():
        store.atomic_write(ctx.paths.verify / f"{wid}.cmd", verify.strip() + "\n")
        _vouch_verify(ctx, wid, verify, decided)
    prompt_path = ctx.paths.prompts / f"{wid}.md"
    contract = contract_text(wid, r.name)
    if tree is not None:
        contract = wt.with_note(contract, tree)
    if policy.on:
        contract = sbx.with_note(contract, wid)
    store.atomic_write(prompt_path, contract + prompt.rstrip("\n") + "\n")
    from looop.workers import resume as rsm  # lazy: a cycle (resume starts workers too)

    template, conv, find = rsm.plan_start(template, r.resume)
    line = substitute_prompt_file(template, prompt_path)
    if mcp_tools:
        line = with_mcp(ctx, line, env)
    try:
        session = spawn_line(
            ctx, knobs, wid, r.name, line, env, ctx.paths.data, policy, cfg, tree, prog
        )
    except SandboxSetupError as e:
        if tree is not None:
            wt.undo(ctx, tree)
        raise WorkerError(f"worker {wid}: cannot set up its sandbox: {e}") from e
    except SessionError as e:
        store.remove(ctx.paths.verify / f"{wid}.cmd")
        if policy.on:
            sbx.forget(ctx, wid)
        if tree is not None:
            wt.undo(ctx, tree)
        raise WorkerError(f"worker {wid} did not start: {e}") from e
    cwd = tree.path if tree is not None else str(ctx.paths.data)
    word = "resume" if resume else "never"
    rsm.note_start(ctx, wid, r.name, r.resume, conv, find, cwd, policy, word, env, tree is not None)
    if tree is not None:
        ctx.events.record(
            "worker_started", id=wid, runner=r.name, sandbox=policy.on, branch=tree.branch
        )
    else:
        ctx.events.record("worker_started", id=wid, runner=r.name, sandbox=policy.on)
    return Started(session, r.name, str(prompt_path))


def _decided_policy(
    wid: str,
    runner: str,
    worker: SandboxPolicy | None,
    of_runner: SandboxPolicy | None,
    cfg: Config,
    decided: bool,
) -> SandboxPolicy:
    """The worker's sandbox; a decision may turn it on, never loosen what the config set."""
    policy = resolve_sandbox(worker, of_runner, cfg.sandbox)
    configured = resolve_sandbox(None, of_runner, cfg.sandbox)
    if decided and configured.on and policy != configured:
        raise WorkerError(
            f"worker {wid}: the config runs '{runner}' workers sandboxed and a decision "
            "cannot loosen that — a human can (`looop worker start --no-sandbox`, or the "
            "config's `sandbox`)"
        )
    return policy


def mcp_tools_on(cfg: Config) -> bool:
    """Whether the worker's agent CLI gets the contract as MCP tools (the config's
    mcp.worker_tools: off unless true, for the process it adds to every worker)."""
    from looop.workers.mcpwire import settings  # lazy: a worker start stays light

    return settings(cfg).worker_tools


def with_mcp(ctx: Ctx, line: str, env: dict[str, str]) -> str:
    """The worker line with `looop mcp --worker` in its CLI's own MCP config
    (workers/mcpwire.py), run as the worker's "$LOOOP_BIN" (inside a sandbox too)."""
    from looop.workers.mcpwire import wire  # lazy: a worker start stays light

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
    tree: Tree | None,
    prog: str | None,
) -> Session:
    """A worker line started as the session `wid`: inside srt when its policy is on (`prog`:
    srt's path, as sandbox.require found it), else as its own argv; in its worktree when it
    has one, else in `cwd`. A sandboxed srt itself starts in `cwd` and its line goes into the
    worktree (srt makes its placeholders in the folder it starts in: sandbox.prepare).
    SandboxSetupError or SessionError: the caller undoes what it made."""
    if policy.on:
        # lazy: only a sandboxed start needs them
        from looop.workers import sandbox as sbx
        from looop.workers import sandboxtty

        if prog is None:  # fail closed: a sandboxed worker never starts outside srt
            raise SandboxSetupError("srt was not looked up before the start")
        end_note = sandboxtty.note_path(ctx, wid)
        try:
            # inside, the same argv as unsandboxed, on a terminal of its own (the pty relay)
            relayed = sandboxtty.relay_line(end_note, worker_argv(line, env.get("PATH")))
            argv, env = sbx.prepare(
                ctx, wid, runner, policy, relayed, env, cfg.raw, tree, prog=prog
            )
        except (OSError, LooopError) as e:  # LooopError: an endpoint it would refuse
            raise SandboxSetupError(str(e)) from e
    else:
        argv = worker_argv(line, env.get("PATH"))
        end_note = None
    return spawn(
        ctx.paths.data,
        wid,
        argv,
        cwd=Path(tree.path) if tree is not None and not policy.on else cwd,
        env=env,
        size=WORKER_SIZE,
        host_idle_s=knobs.real("session_host_idle"),
        log_cap=knobs.log_cap(),
        end_note=end_note,
    )


def _vouch_verify(ctx: Ctx, wid: str, verify: str | None, decided: bool) -> None:
    """A human's verify runs as configured; a decision's (no record) under run_shell's
    sandbox when it is on (workers/verify.py). Written after the command file: a crash
    between leaves it a decision's, which only sandboxes more."""
    if verify is not None and verify.strip() and not decided:
        cmd = store.encode(verify.strip())
        provenance.write(ctx.paths, provenance.VERIFY, wid, cmd, provenance.HUMAN)


def end_generation(ctx: Ctx, wid: str, clean: Tree | None = None) -> None:
    """A reused id must not inherit the last worker's verify result or undelivered steering.
    `clean`: its worktree as worktree.leftover just found it (clean)."""
    provenance.forget(ctx.paths, provenance.VERIFY, wid)  # first: its command goes next
    for name in (f"{wid}.cmd", f"{wid}.json"):
        store.remove(ctx.paths.verify / name)
    store.remove(ctx.paths.sandbox / wid / SANDBOX_SETTINGS)  # sandboxed() reads it
    store.remove(ctx.paths.data / "resume" / f"{wid}.json")  # its conversation: workers/resume
    if os.path.exists(ctx.paths.worktrees / f"{wid}.json"):
        from looop.workers.worktree import release  # lazy: only a repo worker has a worktree

        release(ctx, wid, clean)  # removed, its branch kept; a dirty one is kept and said
    tells = ctx.paths.tells
    if tells.is_dir():
        for t in tells.glob(f"{wid}-*.json"):
            store.remove(t)
