"""A worker's start record, `resume/<id>.json` (atomic, read strictly): what a start again
needs — the runner's `resume` template as it stood when the worker started, the conversation
id, the working directory, the sandbox setting, the worktree flag and the policy. Written by
every start (launch.py, a host's satellite), read by a resume (resume.py) and by a sandboxed
worker's verify, which rebuilds the worker's walls from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import CorruptState
from looop.home.sandboxpolicy import SandboxPolicy, parse_sandbox
from looop.runners import RUNNERS, profile, program
from looop.runners.presets import SESSION_ID
from looop.runners.runnerprofile import valid_id
from looop.spend import usagewindows
from looop.workers.errors import StartHeld, WorkerError
from looop.workers.started import StartRequest

RESUME_DIR = "resume"
POLICIES = ("resume", "never")
# the CLIs that name their conversation themselves: a record's `find` is one of these
FINDERS = tuple(p.name for p in RUNNERS if p.find_id)
_MAX_RECORD = 64 * 1024


class Record(NamedTuple):
    wid: str
    runner: str
    resume: str | None  # the runner's resume template when the worker started; None: never
    conversation: str | None
    cwd: str
    sandbox: SandboxPolicy
    policy: str  # "resume": `looop up` starts it again; "never": only `looop restart` does
    started: float  # epoch seconds of the first start (a CLI's own files are looked for after it)
    find: str | None = None  # a CLI whose profile finds its id after the start (FINDERS)
    home: str | None = None  # where that CLI keeps them (RunnerProfile.id_home)
    repo: bool = False  # it runs in its own worktree (worktrees/<id>.json)
    # what a start on an SSH host adds to a worker's env (its way home: remote/ssh/satellite)
    env: dict[str, str] | None = None
    steerable: bool = False  # a human let decisions steer it (`worker start --steerable`)
    # the program its line runs (a custom --command's, not its runner's): what meters it
    cli: str | None = None


def record_path(ctx: Ctx, wid: str) -> Path:
    return ctx.paths.data / RESUME_DIR / f"{wid}.json"


def mint() -> str:
    """A fresh conversation id (a version-4 UUID, as a --session-id wants), spelled
    here: `uuid` loads `platform` with it, ~1.5 ms of every worker start."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122's variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def with_session_id(template: str, conv: str) -> str:
    """The template with its {{session_id}} filled (an id never needs quoting: see valid_id)."""
    if not valid_id(conv):
        raise WorkerError(f"conversation id {conv[:40]!r} is not an id (letters, digits, - and _)")
    return template.replace(SESSION_ID, conv)


def plan_start(template: str, resume: str | None) -> tuple[str, str | None, str | None]:
    """(the worker line with its conversation id given, the id, which CLI's files hold an id
    it names itself). A line without {{session_id}} gives none; then a resume template that
    needs one is filled from the CLI's own files when its profile finds one (find_id)."""
    if SESSION_ID in template:
        conv = mint()
        return with_session_id(template, conv), conv, None
    find = None
    p = profile(program(resume)) if resume is not None and SESSION_ID in resume else None
    if p is not None and p.find_id:
        find = p.name
    return template, None, find


def encode_sandbox(p: SandboxPolicy) -> Any:
    """The policy as the config spells it (a record, a host's spawn request)."""
    if not p.on:
        return "off"
    if not (p.write or p.deny_read or p.domains):
        return "on"
    return {"write": list(p.write), "deny_read": list(p.deny_read), "domains": list(p.domains)}


def write_record(ctx: Ctx, rec: Record) -> None:
    skip = ("wid", "sandbox", "env", "cli")
    plain = {k: getattr(rec, k) for k in Record._fields if k not in skip}
    store.write_json(
        record_path(ctx, rec.wid),
        {
            "v": 1, "id": rec.wid, "sandbox": encode_sandbox(rec.sandbox), **plain,
            **({"env": rec.env} if rec.env else {}), **({"cli": rec.cli} if rec.cli else {}),
        },
    )  # fmt: skip


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
    steerable: bool = False,
    cli: str | None = None,
) -> None:
    """The record of a worker that just started. A record that cannot be written leaves the
    worker running and says it cannot be resumed (the start itself succeeded). `away`: what
    a host's satellite adds to the worker's env (a resume there adds it again); `steerable`:
    a human's opt-in to decisions steering it (act/reach.py; no record: not opted in)."""
    home = None
    p = profile(find) if find is not None else None
    if p is not None and p.find_id and p.id_home[0]:  # its files under its own folder
        var, rel = p.id_home
        home = (var and env.get(var)) or os.path.join(env.get("HOME", "/nonexistent"), rel)
    rec = Record(
        wid, runner, resume, conv, cwd, sandbox, policy, ctx.clock.now(), find, home, repo, away,
        steerable, cli,
    )  # fmt: skip
    try:
        write_record(ctx, rec)
    except OSError as e:
        store.remove(record_path(ctx, wid))
        ctx.events.emit(
            "warn", "worker.resume", f"worker {wid} cannot be resumed: its record: {e.strerror}"
        )


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
        obj = jsonio.safe_loads(raw)
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
    if find is not None and find not in FINDERS:
        raise _bad(wid, path, f"field 'find' must be {', '.join(FINDERS)} or null")
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
    cwd = str(text("cwd"))  # text() of a field that must be there is never None
    if not cwd.startswith("/"):
        raise _bad(wid, path, "field 'cwd' must be an absolute path")
    runner = str(text("runner"))
    env = _env_field(obj.get("env"), wid, path)
    steerable = obj.get("steerable", False)
    if not isinstance(steerable, bool):
        raise _bad(wid, path, "field 'steerable' must be true or false")
    return Record(
        wid, runner, text("resume", True), conv, cwd, sandbox, str(policy), float(started), find,
        text("home", True), repo, env, steerable, text("cli", True),
    )  # fmt: skip


def _env_field(env: Any, wid: str, path: Path) -> dict[str, str] | None:
    """What a start on an SSH host added: PATH and LOOOP_* names to text, or None."""
    if env is not None and (
        not isinstance(env, dict)
        or not all((isinstance(k, str) and k.startswith("LOOOP_")) or k == "PATH" for k in env)
        or not all(isinstance(v, str) and "\x00" not in v for v in env.values())
    ):
        raise _bad(wid, path, "field 'env' must map PATH and LOOOP_* names to text")
    return env


# -- a start on an account at its provider's usage limit is held as `scheduled`, not failed
# (home/usagewindows keeps the windows and the held starts): the hold rule a start passes
# before anything changes, and the start as asked written down and read back for the reset
# (loop/windowwork makes it then).

_ASKED_TEXT = ("brief", "runner", "command", "verify", "repo", "branch", "host")
_ASKED_FLAGS = ("resume", "steerable", "decided")


def request_json(req: StartRequest) -> dict[str, Any]:
    """The start as asked (what launch works out again at the reset is left out)."""
    obj: dict[str, Any] = {"worker": req.worker}
    obj.update({k: getattr(req, k) for k in _ASKED_TEXT + _ASKED_FLAGS})
    obj["sandbox"] = None if req.sandbox is None else encode_sandbox(req.sandbox)
    if req.repos:
        obj["repos"] = list(req.repos)
    return obj


def request_from(obj: dict[str, Any]) -> StartRequest:
    """A held start read back; WorkerError (one line) when it is not what request_json wrote."""
    wid, brief = obj.get("worker"), obj.get("brief")

    def text(k: str) -> str | None:
        v = obj.get(k)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"field '{k}' is not text")
        return v

    def flag(k: str) -> bool:
        v = obj.get(k)
        if not isinstance(v, bool):
            raise ValueError(f"field '{k}' is not true or false")
        return v

    try:
        if not isinstance(wid, str) or not isinstance(brief, str):
            raise ValueError("its id or brief")
        raw = obj.get("sandbox")
        repos = obj.get("repos", [])
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise ValueError("field 'repos' is not a list of paths")
        return StartRequest(
            repos=tuple(repos),
            worker=wid, brief=brief, runner=text("runner"), command=text("command"),
            verify=text("verify"), repo=text("repo"), branch=text("branch"), host=text("host"),
            sandbox=None if raw is None else parse_sandbox(raw, "sandbox"),
            resume=flag("resume"), steerable=flag("steerable"), decided=flag("decided"),
        )  # fmt: skip
    except ValueError as e:
        raise WorkerError(
            f"held start {wid!r} is unreadable ({str(e).split('|')[0]}) — start it again"
        ) from None


def hold_if_limited(ctx: Ctx, runner: str, line: str, req: StartRequest) -> None:
    """Raise StartHeld (the start kept for the reset) when the account this start would spend
    from is in a usage window; otherwise drop any start held under this id (a new ask replaces
    it). A corrupt windows file is said once and holds nothing."""
    data, now = str(ctx.paths.data), ctx.clock.now()
    acct = usagewindows.account_of(runner, line, ctx.env)
    try:
        w = usagewindows.in_force(usagewindows.read_windows(data), acct.key, now)
    except CorruptState as e:
        if ctx.first_time(str(e)):
            ctx.events.emit("warn", "worker.window", str(e))
        w = None
    if w is None:
        usagewindows.unhold(data, req.worker)
        return
    reason = usagewindows.hold(data, req.worker, w, request_json(req), now)
    until = ctx.clock.offset_stamp_at(w.until)
    ctx.events.record("worker_held", id=req.worker, runner=runner, until=int(w.until))
    raise StartHeld(
        f"held as scheduled until {until}: {reason} — looop starts it at the reset "
        f"(`looop kill {req.worker}` drops it)"
    )
