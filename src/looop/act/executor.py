"""The only place a decision touches the world: one action, WAL-guarded, then one journal line.

Every actor (the pulse, a CLI steering verb) goes through `execute`, so a move made by hand is
validated, crash-guarded, stamped and journaled exactly like one the runner asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.act import shellguard
from looop.act.actions import (
    Action,
    ArchiveGoal,
    Decision,
    DropSchedule,
    KillWorker,
    Noop,
    RemoveSensor,
    RestartSession,
    RunShell,
    SendKey,
    SendNotification,
    StartWorker,
    SteerSession,
    WriteGoal,
    WritePlaybook,
    WriteSchedule,
    WriteSensor,
    goal_of,
    kind_of,
    summary_of,
    tag_of,
)
from looop.act.shell import ShellResult, run_shell
from looop.core import store
from looop.core.config import KNOBS, Config, Knobs
from looop.core.context import Ctx
from looop.core.errors import CorruptState, LooopError
from looop.core.hashing import fnv1a_128
from looop.core.text import one_line
from looop.human.notify import notify

JOURNAL_MAX_CHARS = 500
# Reading stops here; parse_decision rejects anything over its own (much smaller) limit.
_DECISION_READ_CAP = 16 * 1024 * 1024
_HISTORY_NAME = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?\.md")


class ExecError(LooopError):
    """The action was refused or failed; one line for LAST FAILURE and the human."""


@dataclass(frozen=True)
class Executed:
    kind: str
    summary: str
    journal: str  # the sanitised text that went into journal.md
    next_interval_s: int | None
    goal: str | None


# ---------------------------------------------------------------- decision file


def take_decision(ctx: Ctx) -> bytes | None:
    """Read .decision.json and delete it at once: a decision is executed at most once.

    Only a regular file is a decision: a FIFO (which would block the beat forever), a device, a
    socket, a symlink or a directory in its place is discarded with one line, and the next
    beat starts clean."""
    path = ctx.paths.decision
    try:
        raw = store.read_regular(path, _DECISION_READ_CAP, follow=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        discard_decision(path)
        raise ExecError(
            f"cannot read {path.name}: {e.strerror}; it was discarded — write one JSON file"
        ) from e
    discard_decision(path)
    return raw


def discard_decision(path: Path) -> bool:
    """Remove whatever stands at the decision path (a directory too); True when something did."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        pass
    except OSError:
        return False
    import shutil

    shutil.rmtree(path, ignore_errors=True)  # never follows links inside it
    return not os.path.lexists(path)


# ---------------------------------------------------------------- write-ahead log


def _wal_dir(ctx: Ctx) -> Path:
    return ctx.paths.data / ".wal"


@contextlib.contextmanager
def _wal(ctx: Ctx, actor: str, kind: str, fingerprint: str, summary: str) -> Iterator[None]:
    """Hold a locked intent record for the whole side effect; the flock proves we are alive.

    The record is written and locked under a dot-name, then renamed into place, so a checker
    never sees an unlocked record from a live actor.
    """
    wal_dir = _wal_dir(ctx)
    pid = os.getpid()
    who = re.sub(r"[^A-Za-z0-9_]", "_", actor) or "actor"
    name = f"{who}-{pid}-{secrets.token_hex(4)}.json"
    final, tmp = wal_dir / name, wal_dir / f".{name}.tmp"
    record = {
        "v": 1,
        "action": kind,
        "fingerprint": fingerprint,
        "ts": int(ctx.clock.now()),
        "pid": pid,
        "summary": summary,
    }
    try:
        wal_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise ExecError(
            f"cannot write the crash record in .wal/ ({e.strerror}); the {kind} was NOT run"
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, store.encode(store.dumps_state(record) + "\n"))
        os.fsync(fd)
        os.replace(tmp, final)
    except OSError as e:
        os.close(fd)
        store.remove(tmp)
        raise ExecError(
            f"cannot write the crash record in .wal/ ({e.strerror}); the {kind} was NOT run"
        ) from e
    try:
        yield
    finally:
        # Unlink while still locked: there is no moment where the record looks abandoned.
        with contextlib.suppress(OSError):
            final.unlink()
        os.close(fd)


def _take_if_dead(path: Path) -> bytes | None:
    """The record's bytes if no live process holds its lock (and remove it); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # its actor is alive and mid-action
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return None  # replaced under us; look again next beat
        except FileNotFoundError:
            return None  # finished and removed between listing and locking
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        path.unlink()
        return b"".join(chunks)
    except OSError:
        return None  # not a record we can read or remove (a directory, a permission problem)
    finally:
        os.close(fd)


def _describe(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        obj = None
    if not isinstance(obj, dict):
        return {"action": "unknown", "fingerprint": "", "summary": ""}
    kind = obj.get("action", obj.get("kind"))  # "kind" is the single-file reference spelling
    return {
        "action": kind if isinstance(kind, str) and kind else "unknown",
        "fingerprint": str(obj.get("fingerprint", "")),
        "ts": obj.get("ts"),
        "pid": obj.get("pid"),
        "summary": str(obj.get("summary", "")),
    }


def check_interrupted(ctx: Ctx) -> list[dict[str, Any]]:
    """Report (once) and remove intent records whose actor died mid side effect; never retry."""
    wal_dir = _wal_dir(ctx)
    try:
        names = sorted(os.listdir(wal_dir))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    found: list[dict[str, Any]] = []
    candidates: list[tuple[Path, str]] = []
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            # A writer died before its record was in place: nothing ran yet.
            _take_if_dead(wal_dir / name)
        elif name.endswith(".json"):
            candidates.append((wal_dir / name, name.split("-", 1)[0]))
    legacy = ctx.paths.wal  # the reference's single `.action-wal.json`
    if legacy.exists():
        candidates.append((legacy, "pulse"))
    for path, actor in candidates:
        raw = _take_if_dead(path)
        if raw is None:
            continue
        rec = _describe(raw)
        rec["file"] = path.name
        who = "beat" if actor == "pulse" else f"'{actor}' action"
        what = f" ({one_line(rec['summary'], 120)})" if rec["summary"] else ""
        ctx.events.emit(
            "warn",
            "tick.interrupted",
            f"previous {who} died mid '{rec['action']}'{what}; NOT retried; "
            "check it did not half-run",
            action=rec["action"],
            fingerprint=rec["fingerprint"],
        )
        ctx.events.record("tick_interrupted", action=rec["action"], fingerprint=rec["fingerprint"])
        found.append(rec)
    return found


# ---------------------------------------------------------------- journal and goal activity


def _is_break(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) in ("Cc", "Zl", "Zp")


def sanitise_journal(text: str) -> str:
    """One line: control characters and line breaks become spaces, runs collapse, capped."""
    flat = " ".join("".join(" " if _is_break(c) else c for c in text).split())
    if len(flat) > JOURNAL_MAX_CHARS:
        flat = flat[: JOURNAL_MAX_CHARS - 1] + "…"
    return flat


def append_journal(ctx: Ctx, knobs: Knobs, text: str) -> str:
    """Append `- <local YYYY-MM-DD HH:MM> <text>` to journal.md; returns the sanitised text."""
    line_text = sanitise_journal(text) or "(no journal text)"
    stamp = ctx.clock.local().strftime("%Y-%m-%d %H:%M")
    path = ctx.paths.journal
    limit = knobs.num("journal_max_bytes")
    try:
        with store.dir_lock(ctx.paths.state_lock):
            if limit > 0:
                try:
                    if path.stat().st_size >= limit:
                        os.replace(path, path.with_name(path.name + ".1"))
                except FileNotFoundError:
                    pass
            store.append_line(path, f"- {stamp} {line_text}\n")
    except OSError as e:
        raise ExecError(f"cannot append to journal.md: {e.strerror or e}") from e
    return line_text


def _stamp_goal_activity(ctx: Ctx, goal: str) -> None:
    """Fairness data for the prompt; best effort, since the action already happened."""
    path = ctx.paths.goal_activity
    try:
        with store.dir_lock(ctx.paths.state_lock):
            try:
                current = store.read_json_object(path) or {}
            except CorruptState:
                current = {}  # rebuilt from here on; only ages are lost
            current[goal] = int(ctx.clock.now())
            store.write_json(path, current)
    except OSError as e:
        ctx.events.emit(
            "warn",
            "goal.activity_failed",
            f"could not stamp goal activity for '{goal}': {e.strerror or e}",
            goal=goal,
        )


# ---------------------------------------------------------------- the actions


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def _write_goal(ctx: Ctx, a: WriteGoal) -> None:
    body = a.body if a.body.endswith("\n") else a.body + "\n"
    store.atomic_write(ctx.paths.goal(a.id), body)


def _archive_goal(ctx: Ctx, a: ArchiveGoal) -> None:
    src = ctx.paths.goal(a.id)
    dst = ctx.paths.goals_archive / f"{a.id}.md"
    if not src.is_file():
        raise ExecError(f"archive_goal: {ctx.paths.rel(src)} does not exist (nothing to archive)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        raise ExecError(
            f"archive_goal: {ctx.paths.rel(src)} does not exist (nothing to archive)"
        ) from None


def _write_sensor(
    ctx: Ctx,
    knobs: Knobs,
    a: WriteSensor,
    actor: str,
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> None:
    # A sensor runs on every beat; a shell one passes the tripwire like run_shell. A #! line
    # naming another interpreter (python, node, …) is not shell we can read: it goes unscanned.
    if shellguard.foreign_interpreter(a.script) is None:
        _shell_guard(ctx, knobs, a.script, actor, allow_dangerous, "write_sensor", cfg)
    store.atomic_write(ctx.paths.sensor(a.name), _normalise_text(a.script), mode=0o755)


def _remove_sensor(ctx: Ctx, a: RemoveSensor) -> None:
    path = ctx.paths.sensor(a.name)
    if not path.is_file():
        raise ExecError(f"remove_sensor: {ctx.paths.rel(path)} does not exist (nothing to remove)")
    try:
        path.unlink()
    except FileNotFoundError:
        raise ExecError(
            f"remove_sensor: {ctx.paths.rel(path)} does not exist (nothing to remove)"
        ) from None


def _history_key(name: str) -> tuple[str, int] | None:
    m = _HISTORY_NAME.fullmatch(name)
    return (m.group(1), int(m.group(2) or 1)) if m else None


def _prune_playbook_history(hist: Path, keep: int) -> None:
    if keep <= 0:
        return  # 0 keeps every version: history exists to prevent loss
    versions = sorted(
        ((key, p) for p in hist.iterdir() if (key := _history_key(p.name)) is not None),
        key=lambda kp: kp[0],
    )
    for _, p in versions[:-keep]:
        store.remove(p)


def _write_playbook(ctx: Ctx, knobs: Knobs, a: WritePlaybook) -> None:
    body = _normalise_text(a.body)
    paths = ctx.paths
    with store.dir_lock(paths.state_lock):
        try:
            old: bytes | None = store.read_regular(paths.playbook)
        except FileNotFoundError:
            old = None
        if old is not None and old != body.encode():
            hist = paths.playbook_history
            hist.mkdir(parents=True, exist_ok=True)
            stamp = ctx.clock.local().strftime("%Y%m%d-%H%M%S")
            name, n = f"{stamp}.md", 2
            while (hist / name).exists():
                name, n = f"{stamp}-{n}.md", n + 1
            store.atomic_write(hist / name, old)
            _prune_playbook_history(hist, knobs.num("playbook_keep"))
        store.atomic_write(paths.playbook, body)


def _write_last_shell(ctx: Ctx, cmd: str, res: ShellResult) -> None:
    """RUN_SHELL OUTPUT for the next prompt, written whatever the outcome."""
    rec = {
        "v": 1,
        "ts": int(ctx.clock.now()),
        "cmd": cmd,
        "exit_code": res.exit_code,
        "timed_out": res.timed_out,
        "secs": res.secs,
        "stdout": res.stdout,
        "stderr": res.stderr,
    }
    try:
        store.write_json(ctx.paths.last_shell, rec)
    except OSError as e:
        ctx.events.emit(
            "warn", "shell.output_lost", f"could not save run_shell output: {e.strerror or e}"
        )


def _env_forces_tripwire(ctx: Ctx) -> bool:
    """LOOOP_SHELL_ALLOW_DANGEROUS=0 beats `shell_policy: "off"`: env > config, as everywhere."""
    knob = KNOBS["shell_allow_dangerous"]
    raw = ctx.env.get(knob.env, "").strip()
    if not raw:
        return False
    try:
        return knob.from_env(raw) is False
    except ValueError:
        return False  # resolve_knobs already warned about it


def _shell_guard(
    ctx: Ctx,
    knobs: Knobs,
    cmd: str,
    actor: str,
    allow_dangerous: bool,
    what: str = "run_shell",
    cfg: Config | None = None,
) -> None:
    """Refuse shell text the tripwire (or shell_policy) stops, before anything (WAL, output
    file, journal, worker, sensor file) is touched. `what` names the field in the refusal;
    `cfg` is the beat's config (the file is read when there is none, as for a CLI move)."""
    knob_env = KNOBS["shell_allow_dangerous"].env
    if actor != "cli":
        fix = shellguard.DEFAULT_FIX
    elif what == "run_shell":
        fix = "re-run with --allow-dangerous, or set shell_policy"
    else:
        fix = f"re-run with {knob_env}=1 if you mean it, or set shell_policy"
    bypass = "--allow-dangerous" if allow_dangerous else None
    if bypass is None and knobs.values.get("shell_allow_dangerous") is True:
        bypass = knob_env + "=1"
    if bypass is not None:
        why = shellguard.tripwire(cmd)
        if why is not None:
            ctx.events.emit(
                "warn", "shell.tripwire_bypassed", f"{what} tripwire bypassed by {bypass}: {why}"
            )
        return
    try:
        policy = (cfg if cfg is not None else ctx.config()).shell_policy
    except LooopError as e:
        # Fail closed: without the config we do not know the user's deny patterns.
        raise ExecError(f"{what} not run: {e}") from e
    builtin = policy.mode == "tripwire" or _env_forces_tripwire(ctx)
    why = shellguard.verdict(cmd, builtin=builtin, deny=policy.deny, allow=policy.allow)
    if why is not None:
        raise ExecError(shellguard.refusal(why, fix, what))


def _run_shell(
    ctx: Ctx,
    knobs: Knobs,
    a: RunShell,
    actor: str,
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> None:
    _shell_guard(ctx, knobs, a.cmd, actor, allow_dangerous, cfg=cfg)
    timeout = knobs.num("shell_timeout_secs")
    fingerprint = fnv1a_128(store.encode(f"run_shell\n{a.cmd}"))
    with _wal(ctx, actor, "shell", fingerprint, summary_of(a)):
        res = run_shell(ctx, a.cmd, float(timeout))
    _write_last_shell(ctx, a.cmd, res)
    what = one_line(a.reason if a.reason.strip() else a.cmd)
    if res.timed_out:
        raise ExecError(f"run_shell timed out after {timeout}s (LOOOP_SHELL_TIMEOUT_SECS): {what}")
    if res.exit_code != 0:
        raise ExecError(f"run_shell exited {res.exit_code}: {what}")


def _send_notification(
    ctx: Ctx, a: SendNotification, actor: str, cfg: Config | None = None
) -> None:
    message = a.message.strip()
    if not message:
        raise ExecError("send_notification: empty message; say what the human should know")
    fingerprint = fnv1a_128(store.encode(f"send_notification\n{a.message}\n{a.id}"))
    with _wal(ctx, actor, "notify", fingerprint, summary_of(a)):
        notify(ctx, message, a.id, "notification", cfg)


def _start_worker(
    ctx: Ctx,
    knobs: Knobs,
    a: StartWorker,
    actor: str,
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> None:
    from looop.workers.launch import start_worker

    # The worker's launch line and its verify check are shell too: same policy as run_shell.
    for what, text in (("start_worker command", a.command), ("start_worker verify", a.verify)):
        if text is not None and text.strip():
            _shell_guard(ctx, knobs, text, actor, allow_dangerous, what, cfg)

    start_worker(
        ctx,
        knobs,
        a.id,
        a.prompt,
        runner=a.runner,
        command=a.command,
        verify=a.verify,
        cfg=cfg,
    )


def _sessions_call(what: str, fn: Callable[[], object]) -> None:
    """Session errors (finished, gone, unknown id) become this action's failure."""
    from looop.sessions import SessionError

    try:
        fn()
    except SessionError as e:
        raise ExecError(f"{what}: {e}") from e


def _kill_worker(ctx: Ctx, knobs: Knobs, a: KillWorker) -> None:
    from looop.sessions import kill
    from looop.workers.launch import normalise_target

    wid = normalise_target(a.id)
    _sessions_call("kill_worker", lambda: kill(ctx.paths.data, wid))


def _steer_session(ctx: Ctx, knobs: Knobs, a: SteerSession) -> None:
    from looop.sessions import send
    from looop.workers.launch import normalise_target

    wid = normalise_target(a.id)
    # text then CR: raw-mode agent TUIs submit on Enter, and line-mode programs get CR as NL
    _sessions_call("steer_session", lambda: send(ctx.paths.data, wid, a.input + "\r", False))


def _send_key(ctx: Ctx, knobs: Knobs, a: SendKey) -> None:
    from looop.sessions import send_keys
    from looop.workers.launch import normalise_target

    wid = normalise_target(a.id)
    _sessions_call("send_key", lambda: send_keys(ctx.paths.data, wid, list(a.keys)))


def _restart_session(ctx: Ctx, knobs: Knobs, a: RestartSession) -> None:
    from looop.sessions import restart
    from looop.workers.launch import normalise_target

    wid = normalise_target(a.id)
    _sessions_call("restart_session", lambda: restart(ctx.paths.data, wid))


def _write_schedule(ctx: Ctx, a: WriteSchedule) -> None:
    from looop.human import schedules

    try:
        rec = schedules.build(
            ctx.clock, in_s=a.in_s, every_s=a.every_s, cron=a.cron, tz=a.tz, note=a.note
        )
    except schedules.ScheduleError as e:
        raise ExecError(f"write_schedule '{a.name}': {e}") from e
    schedules.write(ctx.paths.schedules, a.name, rec)


def _drop_schedule(ctx: Ctx, a: DropSchedule) -> None:
    from looop.human import schedules

    schedules.drop(ctx.paths.schedules, a.name)  # idempotent, as the reference


def _perform(
    ctx: Ctx,
    knobs: Knobs,
    action: Action,
    actor: str,
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> None:
    match action:
        case Noop():
            pass
        case RunShell():
            _run_shell(ctx, knobs, action, actor, allow_dangerous, cfg)
        case WriteGoal():
            _write_goal(ctx, action)
        case ArchiveGoal():
            _archive_goal(ctx, action)
        case WriteSensor():
            _write_sensor(ctx, knobs, action, actor, allow_dangerous, cfg)
        case RemoveSensor():
            _remove_sensor(ctx, action)
        case WritePlaybook():
            _write_playbook(ctx, knobs, action)
        case SendNotification():
            _send_notification(ctx, action, actor, cfg)
        case StartWorker():
            _start_worker(ctx, knobs, action, actor, allow_dangerous, cfg)
        case KillWorker():
            _kill_worker(ctx, knobs, action)
        case SteerSession():
            _steer_session(ctx, knobs, action)
        case SendKey():
            _send_key(ctx, knobs, action)
        case RestartSession():
            _restart_session(ctx, knobs, action)
        case WriteSchedule():
            _write_schedule(ctx, action)
        case DropSchedule():
            _drop_schedule(ctx, action)


def _os_error(ctx: Ctx, e: OSError) -> str:
    why = e.strerror or str(e)
    if e.filename:
        return f"{why}: {ctx.paths.rel(Path(os.fsdecode(e.filename)))}"
    return why


def execute(
    ctx: Ctx,
    knobs: Knobs,
    decision: Decision,
    *,
    actor: str = "pulse",
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> Executed:
    """Run the one action, stamp its goal, journal it. ExecError (nothing journaled) on failure.

    allow_dangerous skips the shell tripwire (run_shell, a worker's command/verify, a sensor);
    only a human's `looop run --allow-dangerous` sets it, never a decision. cfg: the beat's
    config, so the move runs under the config the beat read (None reads the file now).
    """
    action = decision.action
    kind, summary = kind_of(action), summary_of(action)
    try:
        _perform(ctx, knobs, action, actor, allow_dangerous, cfg)
    except OSError as e:
        raise ExecError(f"{tag_of(action)}: {_os_error(ctx, e)}") from e
    goal = goal_of(action)
    if goal is not None:
        _stamp_goal_activity(ctx, goal)
    text = sanitise_journal(decision.journal or "") or summary
    try:
        journal = append_journal(ctx, knobs, text)
    except ExecError as e:
        raise ExecError(
            f"{kind} ran, but its journal line could not be written ({e}); "
            "do not repeat it — add the line by hand if it matters"
        ) from e
    if actor != "pulse":
        ctx.events.record("steered", actor=actor, action=kind, summary=summary)
    return Executed(
        kind=kind,
        summary=summary,
        journal=journal,
        next_interval_s=decision.next_interval_s,
        goal=goal,
    )
