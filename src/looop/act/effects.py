"""What each action does to the world: goal, sensor, playbook and schedule files, run_shell
(behind the tripwire and shell_policy), a notification, a worker or a session."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from looop.act import reach, shellguard
from looop.act.actions import (
    ArchiveGoal,
    DropSchedule,
    KillWorker,
    RemoveSensor,
    RestartSession,
    RunShell,
    SendKey,
    SendNotification,
    StartWorker,
    SteerSession,
    WriteGoal,
    WriteSchedule,
    WriteSensor,
    summary_of,
)
from looop.act.outcome import ExecError
from looop.act.protected import guard_for
from looop.act.shell import ShellResult, run_shell
from looop.act.wal import _wal
from looop.core import provenance
from looop.core.context import Ctx
from looop.core.text import file_text, one_line
from looop.hot import store
from looop.hot.clock import utc_stamp_ms
from looop.hot.config import KNOBS, Config, Knobs
from looop.hot.errors import LooopError
from looop.hot.hashing import fnv1a_128
from looop.hot.spent import budgets, set_budget
from looop.human import schedules
from looop.human.notify import notify
from looop.sessions.client import kill, restart, send, send_keys
from looop.sessions.state import SessionError, get_session, mark_dead, session_dir
from looop.workers.backend import Backend
from looop.workers.launch import WorkerError, normalise_target, start_worker
from looop.workers.resume import restart_worker
from looop.workers.started import Away
from looop.workers.worktree import tree_path


def _write_goal(ctx: Ctx, a: WriteGoal) -> None:
    body = a.body if a.body.endswith("\n") else a.body + "\n"
    store.atomic_write(ctx.paths.goal(a.id), body)


def _archive_goal(ctx: Ctx, a: ArchiveGoal) -> str | None:
    """An already archived goal is a success that says so; a goal never seen is an error."""
    src = ctx.paths.goal(a.id)
    dst = ctx.paths.goals_archive / f"{a.id}.md"
    if not src.is_file():
        if dst.is_file():
            return f"{ctx.paths.rel(dst)} was already archived"
        raise ExecError(f"archive_goal: {ctx.paths.rel(src)} does not exist (nothing to archive)")
    try:
        # an id archived before keeps its earlier body: goals/archive/ID~2.md, ID~3.md…
        store.move_aside(src, dst.parent, a.id, ".md")
    except FileNotFoundError:
        if dst.is_file():  # archived meanwhile (a human's `looop goal archive`)
            return f"{ctx.paths.rel(dst)} was already archived"
        raise ExecError(
            f"archive_goal: {ctx.paths.rel(src)} does not exist (nothing to archive)"
        ) from None
    return None


def _write_sensor(
    ctx: Ctx,
    knobs: Knobs,
    a: WriteSensor,
    actor: str,
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> None:
    # A sensor runs on every beat; a shell one passes the tripwire like run_shell. Who wrote
    # it is recorded (core/provenance): a decision's runs under shell_policy's sandbox.
    path = ctx.paths.sensor(a.name)
    decided = actor == "pulse"
    unread = _decided_sensor(ctx, a, cfg) if decided else False
    if shellguard.foreign_interpreter(a.script) is None:
        _shell_guard(ctx, knobs, a.script, actor, allow_dangerous, "write_sensor", cfg)
    body = file_text(a.script)
    # first: the old file is no longer a human's (nor unread) while it is replaced
    provenance.forget(ctx.paths, provenance.SENSOR, a.name)
    if unread:  # before the file: it never exists unmarked
        provenance.mark_unread(ctx.paths, provenance.SENSOR, a.name, store.encode(body))
    store.atomic_write(path, body, mode=0o755)
    by = provenance.DECISION if decided else provenance.HUMAN
    provenance.write(ctx.paths, provenance.SENSOR, a.name, store.encode(body), by)


def _decided_sensor(ctx: Ctx, a: WriteSensor, cfg: Config | None) -> bool:
    """A decision may not replace a human's sensor, and may write one the tripwire cannot
    read (python, node, …) only when it will run sandboxed. True: it is such a one."""
    path = ctx.paths.sensor(a.name)
    rel = ctx.paths.rel(path)
    try:
        old: bytes | None = store.read_regular(path)
    except OSError:
        old = None
    if old is not None and provenance.by_human(ctx.paths, provenance.SENSOR, a.name, old):
        raise ExecError(
            f"write_sensor: {rel} was written by a human (`looop sensor write`) and a decision "
            "may not replace it — write a sensor of another name, or ask the human"
        )
    why = shellguard.unreadable_script(file_text(a.script))  # as it lands on disk
    if why is None:
        return False
    try:
        sandboxed = (cfg if cfg is not None else ctx.config()).shell_policy.sandbox.on
    except LooopError as e:
        raise ExecError(f"write_sensor not run: {e}") from e
    if not sandboxed:
        raise ExecError(
            f"write_sensor refused: the tripwire cannot read {rel} ({why}) and "
            "shell_policy's sandbox is off, so it would run unread and unsandboxed every "
            "beat — write it in bash, or ask a human to write it or to turn the sandbox on"
        )
    return True


def _remove_sensor(ctx: Ctx, a: RemoveSensor) -> str | None:
    """Moves are level-triggered: a sensor already gone is a success that says so."""
    path = ctx.paths.sensor(a.name)
    gone = f"{ctx.paths.rel(path)} was already gone"
    if not path.exists() and not path.is_symlink():
        return gone
    if not path.is_file():
        raise ExecError(f"remove_sensor: {ctx.paths.rel(path)} is not a file; remove it by hand")
    try:
        path.unlink()
    except FileNotFoundError:
        return gone
    finally:
        provenance.forget(ctx.paths, provenance.SENSOR, a.name)
    return None


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
    cwd: str | None = None,
    repos: tuple[str, ...] = (),
) -> None:
    """Refuse shell text the tripwire (or shell_policy) stops, before anything (WAL, output
    file, journal, worker, sensor file) is touched. `what` names the field in the refusal;
    `cfg` is the beat's config (the file is read when there is none, as for a CLI move);
    `cwd` where the text runs (the data dir when None), `repos` more repos it must spare."""
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
        why = shellguard.tripwire(cmd, guard_for(ctx, cwd, repos))
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
    guard = guard_for(ctx, cwd, repos) if builtin else shellguard.NO_GUARD
    why = shellguard.verdict(
        cmd, builtin=builtin, deny=policy.deny, allow=policy.allow, guard=guard
    )
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
    if actor == "pulse":  # a human's `looop run` is theirs to run as written
        _decided_line(ctx, a.cmd, cfg, "run_shell", "run_shell")
    timeout = knobs.num("shell_timeout_secs")
    fingerprint = fnv1a_128(store.encode(f"run_shell\n{a.cmd}"))
    with _wal(ctx, actor, "shell", fingerprint, summary_of(a)):
        sandbox = (cfg if cfg is not None else ctx.config()).shell_policy.sandbox
        res = run_shell(ctx, a.cmd, float(timeout), sandbox)
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
    # The worker's launch line and its verify check are shell too: same policy as run_shell.
    # The line runs in the worker's worktree when it has a repo (verify: in the data dir).
    repo, home = a.repo or "", ctx.env.get("HOME", "")
    repo = home + repo[1:] if repo.startswith("~/") and home else repo
    local = (repo,) if repo.startswith("/") and a.host in (None, "local") else ()
    tree = tree_path(ctx, a.id) if local else None
    for what, text, cwd in (
        ("start_worker command", a.command, tree),
        ("start_worker verify", a.verify, None),
    ):
        if text is not None and text.strip():
            _shell_guard(ctx, knobs, text, actor, allow_dangerous, what, cfg, cwd, local)
    unread = False
    if actor == "pulse" and a.verify is not None and a.verify.strip():
        unread = _decided_line(ctx, a.verify, cfg, "start_worker verify", "start_worker")

    host, away = _where(ctx, knobs, a)
    restore = _hold_to_budget(ctx, a)
    try:
        start_worker(
            ctx,
            knobs,
            a.id,
            a.prompt,
            runner=a.runner,
            command=a.command,
            verify=a.verify,
            cfg=cfg,
            sandbox=a.sandbox,
            decided=actor == "pulse",
            repo=a.repo,
            branch=a.branch,
            resume=a.resume,
            host=host,
            away=away,
            steerable=a.steerable,
        )
    except BaseException:
        restore()  # a refused start leaves a live namesake's budget as it was
        raise
    if unread and a.verify is not None:  # after: a start forgets the last worker's records
        cmd = store.encode(a.verify.strip())
        provenance.mark_unread(ctx.paths, provenance.VERIFY, a.id, cmd)


def _where(ctx: Ctx, knobs: Knobs, a: StartWorker) -> tuple[str | None, Away | None]:
    """The host named and the way there. A worker to be metered (its budget; refuse_unmetered
    under a daily budget) stays here, where the meter reads its CLI's records."""
    cap = knobs.real("max_daily_usd")  # cost.breakers.daily_budget's rule (act is below it)
    fail_closed = knobs.values.get("refuse_unmetered") and math.isfinite(cap) and cap > 0
    why = "its budget" if a.budget_usd is not None else "refuse_unmetered" if fail_closed else None
    host, hosts = a.host, (ctx.paths.data / "hosts").is_dir()
    if why is not None and host not in (None, "local"):
        msg = f"worker {a.id}: {why} needs its spend metered, and looop meters workers here"
        raise ExecError(
            f"{msg} only: on host {host} its CLI's records stay there (it would show "
            "unmetered) — start it with --host local, or without a host"
        )
    host = "local" if why is not None and hosts else host  # not placed on a host
    if host is None and not hosts:
        return None, None
    return host, _remote_wing()[0]


def _hold_to_budget(ctx: Ctx, a: StartWorker) -> Callable[[], None]:
    """budget_usd set before the start, as `worker start --budget` does (its first beat
    already holds it to it); what undoes that if the start is refused."""
    if a.budget_usd is None:
        return lambda: None
    data = str(ctx.paths.data)
    was = budgets(data).get(a.id)
    set_budget(data, a.id, a.budget_usd, a.on_budget)
    if was is None:
        return lambda: set_budget(data, a.id, None)
    return lambda: set_budget(data, a.id, was[0], was[1])


def _decided_line(ctx: Ctx, text: str, cfg: Config | None, what: str, action: str) -> bool:
    """A decision's verify or run_shell runs under shell_policy's sandbox when it is on; code
    in it the tripwire cannot read (`python3 -c …`, awk's system(), `perl -x`) is refused
    when that sandbox is off. True: it is such code (allowed, sandboxed)."""
    why = shellguard.unreadable_line(text)
    if why is None:
        return False
    try:
        sandboxed = (cfg if cfg is not None else ctx.config()).shell_policy.sandbox.on
    except LooopError as e:
        raise ExecError(f"{action} not run: {e}") from e
    if not sandboxed:
        raise ExecError(
            f"{what} refused: the tripwire cannot read it ({why}) and "
            "shell_policy's sandbox is off, so it would run unread and unsandboxed — write "
            "it in bash, or ask a human to turn the sandbox on"
        )
    return True


def remote_record(data: Path, wid: str) -> Path:
    """Where the home keeps a remote worker's record (remote/hosts.py record_file)."""
    return data / "hosts" / "workers" / f"{wid}.json"


def _remote(ctx: Ctx, wid: str) -> Backend | None:
    """The backend of a worker running on another host — SSH or Kubernetes (None: it runs
    here)."""
    # one stat first: remote.engine loads the SSH and Kubernetes rooms (~0.1-0.3 s), which
    # a kill of a worker here (most of them) must not pay
    if not remote_record(ctx.paths.data, wid).exists():
        return None
    return _remote_wing()[1](ctx, wid)


def _remote_wing() -> tuple[Away, Callable[[Ctx, str], Backend | None]]:
    """The remote room as a move reaches it, its caller having decided with one stat that
    hosts are registered: where a start goes (remote/dispatch) and a running worker's far
    backend (remote/engine). A fleet without hosts never loads it."""
    # lazy: the remote wing (the SSH and Kubernetes rooms, ~85-210 ms), for hosts only
    from looop.remote import wing

    return wing.dispatch, wing.remote_of


def _sessions_call(what: str, fn: Callable[[], object]) -> None:
    """Session errors (finished, gone, unknown id) become this action's failure, and so does
    a remote worker's host that does not answer (a failed move, never a crashed beat)."""
    try:
        fn()
    except LooopError as e:
        raise ExecError(f"{what}: {e}") from e


def _kill_worker(ctx: Ctx, knobs: Knobs, a: KillWorker) -> str | None:
    """Moves are level-triggered: a worker that is already over (it exited, was killed, or
    its supervisor died) is a success that journals what was found; an unknown id fails."""
    wid = normalise_target(a.id)
    far = _remote(ctx, wid)
    if far is not None:
        try:
            far.kill(wid)
        except SessionError as e:
            if far.reach(wid) == "over":  # level-triggered: an ended worker is a success
                return f"worker {wid} was already over ({e})"
            raise ExecError(f"kill_worker: {e}") from e
        except LooopError as e:  # its host does not answer: a failed move, not a crash
            raise ExecError(f"kill_worker: {e}") from e
        return None
    try:
        left = kill(ctx.paths.data, wid).get("survivors")
    except SessionError as e:
        try:
            s = get_session(ctx.paths.data, wid)
        except SessionError:
            raise ExecError(f"kill_worker: {e}") from e
        if s.alive:
            raise ExecError(f"kill_worker: {e}") from e
        if s.supervisor_died:
            mark_dead(session_dir(ctx.paths.data, wid), utc_stamp_ms(ctx.clock.now()))
            return f"worker {wid} was already dead (its supervisor had died)"
        if s.state == "killed":
            return f"worker {wid} had already been killed"
        return f"worker {wid} had already exited (code {s.exit_code})"
    if left:  # honest: killed, yet something it started outlived SIGKILL
        raise ExecError(f"kill_worker: {wid} was killed but {left} of its processes survived")
    return None


def _steer_session(
    ctx: Ctx, knobs: Knobs, a: SteerSession, actor: str = "cli", cfg: Config | None = None
) -> None:
    wid = normalise_target(a.id)
    far = _remote(ctx, wid)
    if actor == "pulse":  # a decision reaches no further than the decider (act/reach.py)
        got = reach.check_reach(ctx, cfg, "steer_session", wid, far is not None)
        for text in reach.typed_text("steer_session", a.input):
            cwd = got.cwd if got is not None else None
            _shell_guard(ctx, knobs, text, actor, False, "steer_session input", cfg, cwd)
        reach.check_recall("steer_session", a.input, got)
    # text then CR: raw-mode agent TUIs submit on Enter, and line-mode programs get CR as NL
    if far is not None:
        _sessions_call("steer_session", lambda: far.send(wid, a.input + "\r", False))
        return
    _sessions_call("steer_session", lambda: send(ctx.paths.data, wid, a.input + "\r", False))


def _send_key(
    ctx: Ctx, knobs: Knobs, a: SendKey, actor: str = "cli", cfg: Config | None = None
) -> None:
    wid = normalise_target(a.id)
    far = _remote(ctx, wid)
    if actor == "pulse":
        got = reach.check_reach(ctx, cfg, "send_key", wid, far is not None)
        reach.check_keys("send_key", wid, a.keys, got)
    if far is not None:
        _sessions_call("send_key", lambda: far.key(wid, list(a.keys)))
        return
    _sessions_call("send_key", lambda: send_keys(ctx.paths.data, wid, list(a.keys)))


def _restart_session(
    ctx: Ctx, knobs: Knobs, a: RestartSession, actor: str = "cli", cfg: Config | None = None
) -> None:
    wid = normalise_target(a.id)
    far = _remote(ctx, wid)
    if actor == "pulse":
        reach.check_reach(ctx, cfg, "restart_session", wid, far is not None)
    if far is not None:  # where it runs: an SSH host restarts it there, a Job refuses
        _sessions_call("restart_session", lambda: far.restart(wid))
        return
    try:
        if restart_worker(ctx, knobs, wid) is not None:
            return  # started again on its agent conversation
    except WorkerError as e:
        raise ExecError(f"restart_session: {e}") from e
    _sessions_call("restart_session", lambda: restart(ctx.paths.data, wid))


def _write_schedule(ctx: Ctx, a: WriteSchedule) -> None:
    try:
        rec = schedules.build(
            ctx.clock, in_s=a.in_s, every_s=a.every_s, cron=a.cron, tz=a.tz, note=a.note
        )
    except schedules.ScheduleError as e:
        raise ExecError(f"write_schedule '{a.name}': {e}") from e
    schedules.write(ctx.paths.schedules, a.name, rec)


def _drop_schedule(ctx: Ctx, a: DropSchedule) -> None:
    schedules.drop(ctx.paths.schedules, a.name)  # idempotent, as the reference
