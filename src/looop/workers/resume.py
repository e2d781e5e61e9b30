"""Resumable workers: each worker's agent conversation id in its own record, and the start
again on that conversation after a reboot or a dead supervisor.

`resume/<id>.json` (atomic, read strictly) holds what a start again needs: the runner's
`resume` template as it stood when the worker started, the conversation id, the working
directory, the sandbox setting, the worktree flag and the policy (`resume`: `looop up` starts
it again when its session died without a recorded end). claude and pi are GIVEN their id at
start (`{{session_id}}` in the worker line); codex and opencode name their own, which is found
after the start in their own files (`find`), bounded, and believed only when it is an id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looop.core import store
from looop.core.config import PLACEHOLDER, Config, Knobs, substitute_prompt_file
from looop.core.context import Ctx
from looop.core.errors import CorruptState, LooopError
from looop.core.presets import SESSION_ID
from looop.core.sandboxpolicy import SandboxPolicy, parse_sandbox
from looop.human.mailbox import pending
from looop.sessions import Session, SessionError, get_session, kill, list_sessions
from looop.workers.launch import (
    PULSE,
    SandboxSetupError,
    WorkerError,
    mcp_tools_on,
    normalise_target,
    spawn_line,
    with_mcp,
)

if TYPE_CHECKING:
    from looop.workers.worktree import Tree

RESUME_DIR = "resume"
POLICIES = ("resume", "never")
# What a conversation id may be before it goes on a command line: claude's and codex's UUIDs,
# opencode's `ses_…`, pi's UUID. Nothing a shell reads specially.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_MAX_RECORD = 64 * 1024
# Finding codex's id: at most this many rollout files looked at, this much of each read.
_MAX_FILES = 400
_HEAD = 1024 * 1024
_FIND_TIMEOUT_S = 15.0
_MAX_JSON = 32 * 1024 * 1024  # what one `opencode` listing or export may print
_MAX_EXPORTS = 6  # opencode conversations looked into (each export takes ~3 s)
_MAX_DEPTH = 200  # of a CLI's JSON: deeper is not what it writes
_BRIEF_HEAD = 512  # the worker's name is this near the start of its brief


@dataclass(frozen=True)
class Record:
    wid: str
    runner: str
    resume: str | None  # the runner's resume template when the worker started; None: never
    conversation: str | None
    cwd: str
    sandbox: SandboxPolicy
    policy: str  # "resume": `looop up` starts it again; "never": only `looop restart` does
    started: float  # epoch seconds of the first start (codex's files are looked for after it)
    find: str | None = None  # "codex" / "opencode": the id is found after start in its files
    home: str | None = None  # where that CLI keeps them ($CODEX_HOME)
    repo: bool = False  # it runs in its own worktree (worktrees/<id>.json)
    # what a start on an SSH host adds to a worker's env (its way home: remote/ssh/satellite)
    env: dict[str, str] | None = None


def record_path(ctx: Ctx, wid: str) -> Path:
    return ctx.paths.data / RESUME_DIR / f"{wid}.json"


def valid_id(conv: str) -> bool:
    return _ID.fullmatch(conv) is not None


def mint() -> str:
    """A fresh conversation id (a version-4 UUID, as claude's --session-id wants)."""
    import uuid  # lazy: only a start that mints an id pays for it

    return str(uuid.uuid4())


def with_session_id(template: str, conv: str) -> str:
    """The template with its {{session_id}} filled (an id never needs quoting: see _ID)."""
    if not valid_id(conv):
        raise WorkerError(f"conversation id {conv[:40]!r} is not an id (letters, digits, - and _)")
    return template.replace(SESSION_ID, conv)


def _program(template: str) -> str:
    """The CLI a template runs: its first word's base name."""
    words = template.split()
    return os.path.basename(words[0]) if words else ""


def plan_start(template: str, resume: str | None) -> tuple[str, str | None, str | None]:
    """(the worker line with its conversation id given, the id, which CLI's files hold an id
    it names itself). A line without {{session_id}} gives none; then a resume template that
    needs one is filled from the CLI's own files when it is codex or opencode."""
    if SESSION_ID in template:
        conv = mint()
        return with_session_id(template, conv), conv, None
    find = None
    if resume is not None and SESSION_ID in resume and _program(resume) in ("codex", "opencode"):
        find = _program(resume)
    return template, None, find


def encode_sandbox(p: SandboxPolicy) -> Any:
    """The policy as the config spells it (a record, a host's spawn request)."""
    if not p.on:
        return "off"
    if not (p.write or p.deny_read or p.domains):
        return "on"
    return {"write": list(p.write), "deny_read": list(p.deny_read), "domains": list(p.domains)}


def write_record(ctx: Ctx, rec: Record) -> None:
    store.write_json(
        record_path(ctx, rec.wid),
        {
            "v": 1,
            "id": rec.wid,
            "runner": rec.runner,
            "resume": rec.resume,
            "conversation": rec.conversation,
            "cwd": rec.cwd,
            "sandbox": encode_sandbox(rec.sandbox),
            "policy": rec.policy,
            "started": rec.started,
            "find": rec.find,
            "home": rec.home,
            "repo": rec.repo,
            **({"env": rec.env} if rec.env else {}),
        },
    )


def note_start(
    ctx: Ctx,
    wid: str,
    runner: str,
    resume: str | None,
    conv: str | None,
    find: str | None,
    cwd: str,
    sandbox: SandboxPolicy,
    policy: str,
    env: dict[str, str],
    repo: bool,
    away: dict[str, str] | None = None,
) -> None:
    """The record of a worker that just started. A record that cannot be written leaves the
    worker running and says it cannot be resumed (the start itself succeeded). `away`: what
    a host's satellite adds to the worker's env (a resume there adds it again)."""
    home = None
    if find == "codex":
        home = env.get("CODEX_HOME") or os.path.join(env.get("HOME", "/nonexistent"), ".codex")
    rec = Record(
        wid, runner, resume, conv, cwd, sandbox, policy, ctx.clock.now(), find, home, repo, away
    )
    try:
        write_record(ctx, rec)
    except OSError as e:
        store.remove(record_path(ctx, wid))
        ctx.events.emit(
            "warn", "worker.resume", f"worker {wid} cannot be resumed: its record: {e.strerror}"
        )


def forget(ctx: Ctx, wid: str) -> None:
    store.remove(record_path(ctx, wid))


def _bad(wid: str, path: Path, why: str) -> WorkerError:
    return WorkerError(
        f"worker {wid}: its resume record {path} is unreadable ({why}) — start it again "
        f"with `looop worker start {wid} …`"
    )


def read_record(ctx: Ctx, wid: str) -> Record | None:
    """The worker's record, None when it has none; a record that is not exactly what
    write_record writes is refused with one line (a hand edit never reaches a command line)."""
    path = record_path(ctx, wid)
    try:
        raw = store.read_regular(path, _MAX_RECORD)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _bad(wid, path, e.strerror or str(e)) from None
    if len(raw) > _MAX_RECORD:
        raise _bad(wid, path, "too large")
    try:
        from looop.core import jsonsafe  # lazy: only a resume reads JSON this strictly

        obj = jsonsafe.loads(raw)
    except (CorruptState, ValueError) as e:
        raise _bad(wid, path, str(e)[:200]) from None
    if not isinstance(obj, dict) or obj.get("v") != 1 or obj.get("id") != wid:
        raise _bad(wid, path, "not a version 1 record of this worker")
    return _record(obj, wid, path)


def _record(obj: dict[str, Any], wid: str, path: Path) -> Record:
    """The record's fields, each checked as write_record writes it."""

    def text(key: str, optional: bool = False) -> str | None:
        v = obj.get(key)
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v or "\x00" in v:
            raise _bad(wid, path, f"field '{key}' must be a string")
        return v

    conv = text("conversation", True)
    if conv is not None and not valid_id(conv):
        raise _bad(wid, path, "field 'conversation' is not an id (letters, digits, - and _)")
    policy = obj.get("policy")
    if policy not in POLICIES:
        raise _bad(wid, path, "field 'policy' must be " + " or ".join(POLICIES))
    find = obj.get("find")
    if find not in (None, "codex", "opencode"):
        raise _bad(wid, path, "field 'find' must be codex, opencode or null")
    started = obj.get("started")
    if isinstance(started, bool) or not isinstance(started, int | float):
        raise _bad(wid, path, "field 'started' must be a number")
    repo = obj.get("repo")
    if not isinstance(repo, bool):
        raise _bad(wid, path, "field 'repo' must be true or false")
    try:
        sandbox = parse_sandbox(obj.get("sandbox"), "sandbox")
    except (ValueError, LookupError):
        raise _bad(wid, path, "field 'sandbox' is not a sandbox setting") from None
    cwd = text("cwd")
    assert cwd is not None
    if not cwd.startswith("/"):
        raise _bad(wid, path, "field 'cwd' must be an absolute path")
    runner = text("runner")
    assert runner is not None
    env = _env_field(obj.get("env"), wid, path)
    return Record(
        wid=wid,
        runner=runner,
        resume=text("resume", True),
        conversation=conv,
        cwd=cwd,
        sandbox=sandbox,
        policy=str(policy),
        started=float(started),
        find=find,
        home=text("home", True),
        repo=repo,
        env=env,
    )


def _env_field(env: Any, wid: str, path: Path) -> dict[str, str] | None:
    """What a start on an SSH host added: PATH and LOOOP_* names to text, or None."""
    if env is not None and (
        not isinstance(env, dict)
        or not all((isinstance(k, str) and k.startswith("LOOOP_")) or k == "PATH" for k in env)
        or not all(isinstance(v, str) and "\x00" not in v for v in env.values())
    ):
        raise _bad(wid, path, "field 'env' must map PATH and LOOOP_* names to text")
    return env


# -- finding an id a CLI named itself --------------------------------------------------------


def _loads(raw: bytes) -> Any:
    """A CLI's own JSON, which may be anything (nested past the recursion limit too):
    ValueError when it is not plain JSON."""
    from looop.core import jsonsafe  # lazy: only a resume reads a CLI's files

    return jsonsafe.loads(raw, max_depth=_MAX_DEPTH)


def _marker(wid: str) -> str:
    return f"You are worker `{wid}`"  # the contract's first line names the worker


def _opens_brief(text: object, wid: str) -> bool:
    """Whether a user message is this worker's brief: the contract opens it and names the
    worker at once. A tick prompt that quotes a worker's screen further in is not one."""
    return isinstance(text, str) and _marker(wid) in text[:_BRIEF_HEAD]


def _codex_brief(lines: list[bytes], wid: str) -> bool:
    """Whether a rollout's user turns (response_item messages) begin with the worker's brief."""
    for line in lines:
        if b'"response_item"' not in line or b'"user"' not in line:
            continue  # cheap: most lines are neither
        try:
            item = _loads(line)
        except ValueError:
            continue
        pay = item.get("payload") if isinstance(item, dict) else None
        if not isinstance(pay, dict) or item.get("type") != "response_item":
            continue
        if pay.get("type") != "message" or pay.get("role") != "user":
            continue
        content = pay.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and _opens_brief(part.get("text"), wid):
                return True
    return False


def find_codex(home: str, cwd: str, wid: str, since: float) -> str | None:
    """The id of the codex conversation this worker started: the earliest rollout under
    `home/sessions/` written since the start whose first line is codex's session_meta for
    `cwd` and one of whose user turns is the worker's brief. Bounded (files, bytes read); a
    file it cannot read or parse is skipped."""
    base = os.path.join(home, "sessions")
    files: list[tuple[float, str]] = []
    try:
        for root, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if d.isdigit()]  # YYYY/MM/DD only, no symlinked trees
            for n in names:
                if n.startswith("rollout-") and n.endswith(".jsonl"):
                    p = os.path.join(root, n)
                    try:
                        st = os.lstat(p)
                    except OSError:
                        continue
                    if st.st_mtime >= since - 2:
                        files.append((st.st_mtime, p))
            if len(files) > _MAX_FILES:
                break
    except OSError:
        return None
    best: tuple[str, str] | None = None
    for _mtime, p in sorted(files)[:_MAX_FILES]:
        try:
            head = store.read_regular(p, _HEAD)[:_HEAD]
        except OSError:
            continue
        lines = head.split(b"\n")
        try:
            meta = _loads(lines[0])
        except ValueError:
            continue
        pay = meta.get("payload") if isinstance(meta, dict) else None
        if not isinstance(pay, dict) or meta.get("type") != "session_meta":
            continue
        conv, at, where = pay.get("id"), pay.get("timestamp"), pay.get("cwd")
        if not isinstance(conv, str) or not valid_id(conv) or not _same_dir(where, cwd):
            continue
        if not _codex_brief(lines[1:], wid):
            continue
        key = str(at) if isinstance(at, str) else ""
        if best is None or key < best[0]:
            best = (key, conv)
    return best[1] if best else None


def _same_dir(where: object, cwd: str) -> bool:
    if not isinstance(where, str):
        return False
    return where == cwd or os.path.realpath(where) == os.path.realpath(cwd)


def _opencode_json(args: list[str], env: dict[str, str], cwd: str) -> Any:
    """What `opencode ARGS` prints as JSON; None when it fails, runs too long, prints too
    much or prints something else. Its output goes to a file: at most _MAX_JSON is read."""
    import subprocess  # lazy: only finding opencode's id runs a program
    import tempfile

    try:
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(
                ["opencode", *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
                timeout=_FIND_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0 or os.fstat(out.fileno()).st_size > _MAX_JSON:
                return None
            out.seek(0)
            return _loads(out.read())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _opencode_brief(env: dict[str, str], cwd: str, conv: str, wid: str) -> bool:
    """Whether opencode's conversation `conv` opens with this worker's brief (its export)."""
    got = _opencode_json(["export", conv], env, cwd)
    messages = got.get("messages") if isinstance(got, dict) else None
    for m in messages if isinstance(messages, list) else []:
        info = m.get("info") if isinstance(m, dict) else None
        if not isinstance(info, dict) or info.get("role") != "user":
            continue
        parts = m.get("parts")
        return any(
            isinstance(p, dict) and p.get("type") == "text" and _opens_brief(p.get("text"), wid)
            for p in (parts if isinstance(parts, list) else [])
        )  # the first user message only
    return False


def find_opencode(env: dict[str, str], cwd: str, wid: str, since: float) -> str | None:
    """The id of the opencode conversation this worker started: of those `opencode session
    list` names in `cwd` since the start (a tick's and other workers' too: they share the
    data dir), the earliest whose first user message is the worker's brief (`opencode
    export`). Bounded in time and in how many are looked at; anything odd is no id."""
    rows = _opencode_json(["session", "list", "--format", "json"], env, cwd)
    found: list[tuple[float, str]] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        conv, made = row.get("id"), row.get("created")
        if isinstance(row.get("time"), dict):
            made = row["time"].get("created", made)
        if not isinstance(conv, str) or not valid_id(conv):
            continue
        if "directory" in row and not _same_dir(row["directory"], cwd):
            continue
        if isinstance(made, int | float) and not isinstance(made, bool):
            secs = made / 1000 if made > 1e11 else float(made)  # opencode counts milliseconds
            if secs >= since - 2:
                found.append((secs, conv))
    for _secs, conv in sorted(found)[:_MAX_EXPORTS]:
        if _opencode_brief(env, cwd, conv, wid):
            return conv
    return None


def conversation(ctx: Ctx, rec: Record) -> str | None:
    """The recorded id, or the one found now in the CLI's own files (then recorded)."""
    if rec.conversation is not None or rec.find is None:
        return rec.conversation
    conv: str | None = None
    if rec.find == "codex" and rec.home:
        conv = find_codex(rec.home, rec.cwd, rec.wid, rec.started)
    elif rec.find == "opencode":
        conv = find_opencode(ctx.child_env(), rec.cwd, rec.wid, rec.started)
    if conv is not None:
        try:
            write_record(ctx, _replace(rec, conversation=conv))
        except OSError:
            pass  # found again next time
    return conv


def _replace(rec: Record, **kw: Any) -> Record:
    fields = {k: getattr(rec, k) for k in Record.__dataclass_fields__}
    fields.update(kw)
    return Record(**fields)


# -- starting again ---------------------------------------------------------------------------


def _session(ctx: Ctx, wid: str) -> Session | None:
    try:
        return get_session(ctx.paths.data, wid)
    except SessionError:
        return None


def note_text(ctx: Ctx, wid: str) -> str:
    """What the resumed agent is told first: why it is back, and each ask it still waits on."""
    lines = [
        "looop started you again on this same conversation: your session had ended without "
        "finishing (the machine rebooted or your supervisor died). Carry on where you left "
        "off; re-check anything that was in flight (a command that was running was killed)."
    ]
    for a in pending(ctx.paths.asks, ctx.paths.answers):
        if a.get("worker") == wid and isinstance(a.get("id"), str):
            aid = a["id"]
            lines.append(
                f"Your question {aid} is still waiting for a human. Wait for its answer "
                f'with `"$LOOOP_BIN" ask {wid} --wait {aid}` (it prints only the answer) '
                "— do not ask it again."
            )
    return "\n\n".join(lines) + "\n"


@dataclass(frozen=True)
class Resumed:
    session: Session
    runner: str
    conversation: str | None


def resumable(ctx: Ctx, wid: str) -> bool:
    """Whether `looop restart` takes the resume path for this worker: it has a record whose
    runner had a resume template. Any record, even a bad one: then the resume says why."""
    try:
        rec = read_record(ctx, wid)
    except WorkerError:
        return True
    return rec is not None and rec.resume is not None


def _resumable(ctx: Ctx, wid: str) -> tuple[Record, str, str | None]:
    """The worker's record, its resume line (with its conversation id) and that id; a
    WorkerError says why it cannot be resumed."""
    rec = read_record(ctx, wid)
    if rec is None:
        raise WorkerError(
            f"worker {wid} has no resume record (no such worker, or it started before looop "
            f"recorded conversations) — start it again with `looop worker start {wid} …`"
        )
    if rec.resume is None:
        raise WorkerError(
            f"worker {wid} cannot be resumed: its runner '{rec.runner}' has no resume template "
            f"(add `resume` to runners.{rec.runner} in the config, e.g. `looop init` writes "
            "one per preset) — start it again instead"
        )
    line = rec.resume
    conv: str | None = None
    if SESSION_ID in line:
        conv = conversation(ctx, rec)
        if conv is None:
            where = f", and {rec.find}'s own files name none for it" if rec.find else ""
            raise WorkerError(
                f"worker {wid} cannot be resumed: no conversation id was recorded for it (its "
                f"worker line gave none{where}) — start it again instead"
            )
        line = with_session_id(line, conv)
    if not os.path.isdir(rec.cwd):
        raise WorkerError(f"worker {wid} cannot be resumed: its directory {rec.cwd} is gone")
    return rec, line, conv


def _live_tree(ctx: Ctx, wid: str, rec: Record) -> Tree | None:
    """A repo worker's worktree, which must still be there; None for a plain worker."""
    tree = None
    if rec.repo:
        from looop.workers import worktree as wt  # lazy: only a repo worker has one

        tree = wt.load(ctx, wid)
        if tree is None or tree.removed or not os.path.isdir(tree.path):
            raise WorkerError(
                f"worker {wid} cannot be resumed: its worktree is gone — start it again"
            )
    return tree


def _resume_env(ctx: Ctx, wid: str, rec: Record, tree: Tree | None) -> dict[str, str]:
    """The resumed worker's environment, as it started with."""
    env = ctx.child_env({"LOOOP_SESSION_ID": wid, "LOOOP_RUNNER": rec.runner})
    if rec.env:  # on an SSH host: its way home again (remote/ssh/satellite.py)
        env.update(rec.env)
    if tree is not None:
        env["LOOOP_WORKSPACE"] = tree.path
    return env


def resume_worker(ctx: Ctx, knobs: Knobs, worker_id: str, cfg: Config | None = None) -> Resumed:
    """Start the worker again on its recorded conversation, in the same directory (or
    worktree), with the same sandbox setting. A live one is ended first. Everything is
    checked before anything changes; each refusal is one line."""
    wid = normalise_target(worker_id)
    rec, line, conv = _resumable(ctx, wid)
    tree = _live_tree(ctx, wid, rec)
    s = _session(ctx, wid)
    env = _resume_env(ctx, wid, rec, tree)
    if cfg is None:
        cfg = ctx.config()
    prog: str | None = None
    if rec.sandbox.on:
        from looop.workers import sandbox as sbx  # lazy: only a sandboxed worker needs it

        prog = sbx.require(env, f"worker {wid}")
    mcp_tools = mcp_tools_on(cfg)  # a bad "mcp" config is said before anything changes

    # commit: a live one ends first, then the same id starts on its conversation
    if s is not None and s.alive:
        try:
            kill(ctx.paths.data, wid)
        except SessionError as e:
            raise WorkerError(f"worker {wid}: could not end it to resume it: {e}") from e
    if rec.env and rec.env.get("LOOOP_CALLHOME_DIR"):  # sandboxed on a host: its bridge
        from looop.workers.bridge import ensure_bridge  # lazy: only a host's worker

        ensure_bridge(ctx.paths.data, ctx.bin, dict(ctx.env))
    note = ctx.paths.prompts / f"{wid}.resume.md"
    store.atomic_write(note, note_text(ctx, wid))
    line = substitute_prompt_file(line, note) if PLACEHOLDER in line else line
    if mcp_tools:
        line = with_mcp(ctx, line, env)
    try:
        session = spawn_line(
            ctx, knobs, wid, rec.runner, line, env, Path(rec.cwd), rec.sandbox, cfg, tree, prog
        )
    except SandboxSetupError as e:
        raise WorkerError(f"worker {wid}: cannot set up its sandbox: {e}") from e
    except SessionError as e:
        raise WorkerError(f"worker {wid} did not resume: {e}") from e
    ctx.events.record("worker_resumed", id=wid, runner=rec.runner, conversation=conv)
    return Resumed(session, rec.runner, conv)


def restart_worker(ctx: Ctx, knobs: Knobs, worker_id: str) -> dict[str, Any] | None:
    """`looop restart` / restart_session: a worker with a resume record resumes its
    conversation ({"resumed": …}); None leaves the plain in-place restart to the caller."""
    wid = normalise_target(worker_id)
    if not resumable(ctx, wid):
        s = _session(ctx, wid)
        if s is not None and not s.alive and s.supervisor_died:
            raise WorkerError(
                f"worker {wid} cannot be restarted: its supervisor is gone and "
                + (
                    "its runner has no resume template"
                    if record_path(ctx, wid).exists()
                    else "it has no resume record"
                )
                + f" — start it again with `looop worker start {wid} …`"
            )
        return None
    r = resume_worker(ctx, knobs, wid)
    return {"resumed": wid, "conversation": r.conversation, "runner": r.runner}


def to_resume(ctx: Ctx) -> list[str]:
    """Workers `looop up` starts again: policy `resume`, session died without a recorded end
    (a worker that exited or was killed stays as it is)."""
    out = []
    for s in list_sessions(ctx.paths.data):
        if s.id == PULSE or s.alive or not s.supervisor_died:
            continue
        try:
            rec = read_record(ctx, s.id)
        except WorkerError:
            out.append(s.id)  # its resume says what is wrong with it
            continue
        if rec is not None and rec.policy == "resume":
            out.append(s.id)
    return sorted(out)


def resume_dead(ctx: Ctx, knobs: Knobs) -> list[tuple[str, str | None]]:
    """Start again every worker `to_resume` names: (id, None) or (id, why it could not)."""
    done: list[tuple[str, str | None]] = []
    for wid in to_resume(ctx):
        try:
            resume_worker(ctx, knobs, wid)
        except (LooopError, OSError) as e:  # one worker's trouble never stops the others
            done.append((wid, str(e)))
            continue
        done.append((wid, None))
    return done
