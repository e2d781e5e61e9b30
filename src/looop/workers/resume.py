"""Resumable workers: each worker's agent conversation id in its own record, and the start
again on that conversation after a reboot or a dead supervisor.

`resume/<id>.json` (atomic, read strictly) holds what a start again needs: the runner's
`resume` template as it stood when the worker started, the conversation id, the working
directory, the sandbox setting, the worktree flag and the policy (`resume`: `looop up` starts
it again when its session died without a recorded end). Most CLIs are GIVEN their id at
start (`{{session_id}}` in the worker line); one that names its own has it found after the
start by its profile (RunnerProfile.find_id: in its rollout files, its store), bounded, and
believed only when it is an id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.core.promptfile import substitute_prompt_file
from looop.home import store
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.human.mailbox import pending
from looop.runners import profile
from looop.runners.presets import PLACEHOLDER, SESSION_ID
from looop.runners.runnerprofile import valid_id as valid_id
from looop.sandbox import worker as sbx
from looop.sessions.client import kill
from looop.sessions.state import Session, SessionError, get_session, list_sessions
from looop.views import outcomes
from looop.workers import ports, treerecord
from looop.workers.bridge import ensure_bridge
from looop.workers.errors import WorkerError
from looop.workers.ids import PULSE, normalise_target
from looop.workers.launch import SandboxSetupError, mcp_tools_on, spawn_line, with_mcp
from looop.workers.startrecord import RESUME_DIR as RESUME_DIR
from looop.workers.startrecord import Record, with_session_id, write_record
from looop.workers.startrecord import note_start as note_start
from looop.workers.startrecord import read_record as read_record
from looop.workers.startrecord import record_path as record_path
from looop.workers.treerecord import Tree

# -- finding an id a CLI named itself --------------------------------------------------------


def conversation(ctx: Ctx, rec: Record) -> str | None:
    """The recorded id, or the one found now in the CLI's own files (then recorded)."""
    if rec.conversation is not None or rec.find is None:
        return rec.conversation
    p = profile(rec.find)
    conv = p.find(ctx.child_env(), rec.home, rec.cwd, rec.wid, rec.started) if p else None
    if conv is not None:
        try:
            write_record(ctx, rec._replace(conversation=conv))
        except OSError:
            pass  # found again next time
    return conv


# -- starting again ---------------------------------------------------------------------------


def _session(ctx: Ctx, wid: str) -> Session | None:
    try:
        return get_session(ctx.paths.data, wid)
    except SessionError:
        return None


def note_text(ctx: Ctx, wid: str, why: str | None = None) -> str:
    """What the resumed agent is told first: why it is back (`why`; default: its session
    ended unfinished), and each ask it still waits on."""
    lines = [
        why
        or "looop started you again on this same conversation: your session had ended without "
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


class Resumed(NamedTuple):
    session: Session
    runner: str
    conversation: str | None
    prompt: bool = False  # it was told `why` as its prompt file (else: as its `looop told`)


def resumable(ctx: Ctx, wid: str) -> bool:
    """Whether `looop restart` takes the resume path for this worker: it has a record whose
    runner had a resume template. Any record, even a bad one: then the resume says why."""
    try:
        rec = read_record(ctx, wid)
    except WorkerError:
        return True
    return rec is not None and rec.resume is not None


def exited_resumable(ctx: Ctx, wid: str) -> bool:
    """Whether a tell to this worker starts it again on its conversation (steer_session): its
    session has ended and it has a resume record (a bad one says why when resumed)."""
    s = _session(ctx, wid)
    return s is not None and not s.alive and resumable(ctx, wid)


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
        if (conv := conversation(ctx, rec)) is None:
            where = f", and {rec.find}'s own files name none for it" if rec.find else ""
            raise WorkerError(
                f"worker {wid} cannot be resumed: no conversation id was recorded for it (its "
                f"worker line gave none{where}) — start it again instead"
            )
        line = with_session_id(line, conv)
    if not os.path.isdir(rec.cwd):
        raise WorkerError(f"worker {wid} cannot be resumed: its directory {rec.cwd} is gone")
    return rec, line, conv


def _live_trees(ctx: Ctx, wid: str, rec: Record) -> list[Tree]:
    """A repo worker's worktrees (one, or one of each repository of a worker of several),
    which must all still be there; [] for a plain worker."""
    if not rec.repo:
        return []
    try:
        trees = treerecord.load_all(ctx, wid)
    except treerecord.WorktreeError as e:
        raise WorkerError(f"worker {wid} cannot be resumed: {e}") from None
    if not trees or any(t.removed or not os.path.isdir(t.path) for t in trees):
        raise WorkerError(f"worker {wid} cannot be resumed: its worktree is gone — start it again")
    return trees


def _resume_env(ctx: Ctx, wid: str, rec: Record, trees: list[Tree]) -> dict[str, str]:
    """The resumed worker's environment, as it started with."""
    env = ctx.child_env({"LOOOP_SESSION_ID": wid, "LOOOP_RUNNER": rec.runner})
    if rec.env:  # on an SSH host: its way home again (remote/ssh/satellite.py)
        env.update(rec.env)
    if (start := sbx.starts_in(trees)) is not None:  # its worktree, or the folder holding several
        env["LOOOP_WORKSPACE"] = start
    elif Path(rec.cwd).parent.parent == ctx.paths.rooms:  # a plain worker's room, as at start
        env.update(LOOOP_WORKSPACE=rec.cwd, TMPDIR=str(Path(rec.cwd).parent / "tmp"))
    return env


def resume_worker(
    ctx: Ctx, knobs: Knobs, worker_id: str, cfg: Config | None = None, why: str | None = None
) -> Resumed:
    """Start the worker again on its recorded conversation, in the same directory (or
    worktree), with the same sandbox setting. A live one is ended first. Everything is
    checked before anything changes; each refusal is one line. `why`: what it is told first
    (note_text)."""
    wid = normalise_target(worker_id)
    rec, line, conv = _resumable(ctx, wid)
    trees = _live_trees(ctx, wid, rec)
    s = _session(ctx, wid)
    env = _resume_env(ctx, wid, rec, trees)
    if not rec.env:  # a worker here (one on a host gets no port there)
        others = {x.id for x in list_sessions(ctx.paths.data) if x.alive and x.id != wid}
        held = s is not None and s.alive  # its own port may still be bound by its last run
        env["LOOOP_PORT"] = str(ports.lease(ctx.paths.data, wid, others, knobs, held))
    cfg = cfg if cfg is not None else ctx.config()
    prog = sbx.require(env, f"worker {wid}") if rec.sandbox.on else None
    mcp_tools = mcp_tools_on(cfg)  # a bad "mcp" config is said before anything changes

    # commit: a live one ends first, then the same id starts on its conversation
    if s is not None and s.alive:
        try:
            kill(ctx.paths.data, wid)
        except SessionError as e:
            raise WorkerError(f"worker {wid}: could not end it to resume it: {e}") from e
    if rec.env and rec.env.get("LOOOP_CALLHOME_DIR"):  # sandboxed on a host: its bridge
        ensure_bridge(ctx.paths.data, ctx.bin, dict(ctx.env))
    note = ctx.paths.prompts / f"{wid}.resume.md"
    store.atomic_write(note, note_text(ctx, wid, why))
    took = PLACEHOLDER in line
    line = substitute_prompt_file(line, note) if took else line
    if mcp_tools:
        line = with_mcp(ctx, line, env)
    try:
        session = spawn_line(
            ctx, knobs, wid, rec.runner, line, env, Path(rec.cwd), rec.sandbox, cfg, trees, prog
        )
    except SandboxSetupError as e:
        raise WorkerError(f"worker {wid}: cannot set up its sandbox: {e}") from e
    except SessionError as e:
        raise WorkerError(f"worker {wid} did not resume: {e}") from e
    ctx.events.record("worker_resumed", id=wid, runner=rec.runner, conversation=conv)
    return Resumed(session, rec.runner, conv, took)


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
        if outcomes.stalled(str(ctx.paths.data), s.id) is not None:
            continue  # it failed the same way again and again: a human clears it first
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
