"""The typed actions: the one move a runner may ask for, and the Decision that carries it.

Every action is a frozen dataclass whose ids are checked (and worker targets
normalised) on construction, so a CLI verb building one directly gets the same guard as a
parsed decision.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from looop.core.text import one_line
from looop.hot.errors import LooopError
from looop.hot.sandboxpolicy import SandboxPolicy


class DecisionError(LooopError):
    """A decision the executor refuses: bad JSON, unknown action, a field of the wrong type."""


_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_WORKER_PREFIX = "looop-"
_PULSE = "pulse"


def _shown(value: Any, limit: int = 40) -> str:
    """A value as one clipped JSON token for error messages (newlines stay escaped)."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "…"
    text = json.dumps(value)
    return text if len(text) <= limit + 12 else text[: limit + 8] + "…"


def check_id(kind: str, value: str) -> str:
    """A name that becomes a file or session name: no traversal, no hidden files, 1-64 chars."""
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value) or ".." in value:
        raise DecisionError(
            f"invalid {kind} id {_shown(value)}: use 1-64 letters, digits, '.', '_' or '-', "
            "not starting with '.'"
        )
    return value


def _strip_worker_prefix(value: str) -> str:
    return value[len(_WORKER_PREFIX) :] if value.startswith(_WORKER_PREFIX) else value


def worker_target(value: str) -> str:
    """A worker id as the model may spell it (`looop-x` or `x`); the pulse is never a target."""
    wid = _strip_worker_prefix(value) if isinstance(value, str) else value
    if wid == _PULSE:
        raise DecisionError(
            '"pulse" is the control loop, not a worker: name a worker id (see `looop worker list`)'
        )
    return check_id("worker", wid)


def _not_int(v: Any) -> bool:
    return isinstance(v, bool) or not isinstance(v, int)


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Noop:
    reason: str = ""


@dataclass(frozen=True)
class RunShell:
    cmd: str
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.cmd.strip():
            raise DecisionError("run_shell: field 'cmd' must be a non-empty string")
        if "\x00" in self.cmd:
            raise DecisionError("run_shell: field 'cmd' must not contain NUL characters")


@dataclass(frozen=True)
class WriteGoal:
    id: str
    body: str

    def __post_init__(self) -> None:
        check_id("goal", self.id)
        # An empty goal would sit in the prompt saying nothing; archive_goal removes one.
        if not self.body.strip():
            raise DecisionError(
                "write_goal: field 'body' must be a non-empty string (archive_goal removes a goal)"
            )


@dataclass(frozen=True)
class ArchiveGoal:
    id: str

    def __post_init__(self) -> None:
        check_id("goal", self.id)


@dataclass(frozen=True)
class WriteSensor:
    name: str
    script: str

    def __post_init__(self) -> None:
        check_id("sensor", self.name)
        # An empty script is a sensor that fails every beat; remove_sensor removes one.
        if not self.script.strip():
            raise DecisionError(
                "write_sensor: field 'script' must be a non-empty string "
                "(remove_sensor removes a sensor)"
            )


@dataclass(frozen=True)
class RemoveSensor:
    name: str

    def __post_init__(self) -> None:
        check_id("sensor", self.name)


@dataclass(frozen=True)
class WritePlaybook:
    body: str

    def __post_init__(self) -> None:
        # An empty PLAYBOOK would silently erase the loop's instructions.
        if not self.body.strip():
            raise DecisionError("write_playbook: field 'body' must be a non-empty string")


MAX_BUDGET_USD = 10_000.0  # a larger per-worker ceiling is a typo, not a cap
ON_BUDGET = ("pause", "stop")  # hot/spent.py POLICIES (not imported: act stays light)


@dataclass(frozen=True)
class StartWorker:
    id: str
    prompt: str
    runner: str | None = None
    command: str | None = None
    verify: str | None = None
    sandbox: SandboxPolicy | None = None  # None: the config decides
    repo: str | None = None  # run it in its own git worktree of this repo
    branch: str | None = None  # that worktree's branch (default looop/<id>)
    resume: bool = False  # `looop up` starts it again on its conversation after a crash
    host: str | None = None  # an SSH host (looop host add) or "local"; None: placed
    budget_usd: float | None = None  # its spend ceiling, metered each beat (hot/spent.py)
    on_budget: str = "pause"  # at it: "pause" (SIGSTOP) or "stop" (worktree kept)
    steerable: bool = False  # a human's opt-in to decisions steering it (act/reach.py)

    def __post_init__(self) -> None:
        _set(self, "id", worker_target(self.id))
        if not self.prompt.strip():
            raise DecisionError("start_worker: field 'prompt' must be a non-empty string")
        b = self.budget_usd
        if b is not None and not (
            isinstance(b, int | float) and not isinstance(b, bool) and 0 < b <= MAX_BUDGET_USD
        ):  # NaN fails the range too
            raise DecisionError(
                f"start_worker: field 'budget_usd' must be a number of USD above 0 and at most "
                f"{MAX_BUDGET_USD:g}, got {_shown(b)}"
            )
        if b is not None:
            _set(self, "budget_usd", float(b))
        if self.on_budget not in ON_BUDGET:
            raise DecisionError(
                f'start_worker: field \'on_budget\' must be "pause" or "stop", '
                f"got {_shown(self.on_budget)}"
            )
        if self.repo is not None and not self.repo.strip():
            raise DecisionError("start_worker: field 'repo' must be the path of a git repository")
        if self.branch is not None and self.repo is None:
            raise DecisionError("start_worker: field 'branch' needs 'repo' (the repository)")
        if self.branch is not None and not self.branch.strip():
            raise DecisionError("start_worker: field 'branch' must be a branch name")
        if self.host is not None and not self.host.strip():
            raise DecisionError("start_worker: field 'host' must name a host (looop host ls)")


@dataclass(frozen=True)
class KillWorker:
    id: str
    reason: str = ""

    def __post_init__(self) -> None:
        _set(self, "id", worker_target(self.id))


@dataclass(frozen=True)
class SteerSession:
    id: str
    input: str

    def __post_init__(self) -> None:
        _set(self, "id", worker_target(self.id))


MAX_KEYS = 64


@dataclass(frozen=True)
class SendKey:
    id: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        _set(self, "id", worker_target(self.id))
        keys = tuple(self.keys)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise DecisionError("send_key: field 'keys' must be a non-empty list of strings")
        if len(keys) > MAX_KEYS or any(len(k) > 64 for k in keys):
            raise DecisionError(
                f"send_key: field 'keys' takes at most {MAX_KEYS} key names of up to 64 chars; "
                "type text with steer_session"
            )
        _set(self, "keys", keys)


@dataclass(frozen=True)
class RestartSession:
    id: str

    def __post_init__(self) -> None:
        _set(self, "id", worker_target(self.id))


@dataclass(frozen=True)
class SendNotification:
    message: str
    id: str = ""


# A one-shot from a second, a period from a minute; past ten years either saturates there
# (human/schedules.FAR_S), as v1.0's does, rather than being refused.
IN_S_BOUNDS = (1, 10**18 - 1)
EVERY_S_BOUNDS = (60, 10**18 - 1)


@dataclass(frozen=True)
class WriteSchedule:
    name: str
    in_s: int | None = None
    every_s: int | None = None
    cron: str | None = None
    tz: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        check_id("schedule", self.name)
        given = [f for f in ("in_s", "every_s", "cron") if getattr(self, f) is not None]
        if len(given) != 1:
            raise DecisionError(
                "write_schedule: give exactly one of 'in_s', 'every_s' or 'cron' "
                f"(got {', '.join(given) or 'none'})"
            )
        for name, (low, high) in (("in_s", IN_S_BOUNDS), ("every_s", EVERY_S_BOUNDS)):
            v = getattr(self, name)
            if v is not None and (_not_int(v) or not low <= v <= high):
                raise DecisionError(
                    f"write_schedule: field '{name}' must be an integer from {low} to {high}"
                )
        if self.cron is not None and not self.cron.strip():
            raise DecisionError("write_schedule: field 'cron' must be a non-empty string")
        for name, text, most in (("cron", self.cron, 200), ("tz", self.tz, 64)):
            if text is not None and len(text) > most:
                raise DecisionError(f"write_schedule: field '{name}' is over {most} characters")


@dataclass(frozen=True)
class DropSchedule:
    name: str

    def __post_init__(self) -> None:
        check_id("schedule", self.name)


Action = (
    Noop
    | RunShell
    | WriteGoal
    | ArchiveGoal
    | WriteSensor
    | RemoveSensor
    | WritePlaybook
    | StartWorker
    | KillWorker
    | SteerSession
    | SendKey
    | RestartSession
    | SendNotification
    | WriteSchedule
    | DropSchedule
)

# action tag (the JSON spelling) and kind word (events, tick.decided) per type
_NAMES: dict[type, tuple[str, str]] = {
    Noop: ("noop", "noop"),
    RunShell: ("run_shell", "shell"),
    WriteGoal: ("write_goal", "goal"),
    ArchiveGoal: ("archive_goal", "archive"),
    WriteSensor: ("write_sensor", "sensor"),
    RemoveSensor: ("remove_sensor", "remove-sensor"),
    WritePlaybook: ("write_playbook", "playbook"),
    StartWorker: ("start_worker", "worker"),
    KillWorker: ("kill_worker", "kill"),
    SteerSession: ("steer_session", "steer"),
    SendKey: ("send_key", "key"),
    RestartSession: ("restart_session", "restart"),
    SendNotification: ("send_notification", "notify"),
    WriteSchedule: ("write_schedule", "schedule"),
    DropSchedule: ("drop_schedule", "drop-schedule"),
}
ACTION_TAGS: tuple[str, ...] = tuple(tag for tag, _ in _NAMES.values())


@dataclass(frozen=True)
class Decision:
    action: Action
    journal: str | None = None
    next_interval_s: int | None = None


def tag_of(action: Action) -> str:
    return _NAMES[type(action)][0]


def kind_of(action: Action) -> str:
    return _NAMES[type(action)][1]


def summary_of(action: Action) -> str:
    """The journal fallback and the tick.decided summary: one short line."""
    match action:
        case Noop(reason=r):
            return f"noop · {one_line(r)}" if r.strip() else "noop"
        case RunShell(cmd=c, reason=r):
            return f"run-shell · {one_line(r if r.strip() else c)}"
        case WriteGoal(id=i):
            return f"write-goal {i}"
        case ArchiveGoal(id=i):
            return f"archive-goal {i}"
        case WriteSensor(name=n):
            return f"write-sensor {n}"
        case RemoveSensor(name=n):
            return f"remove-sensor {n}"
        case WritePlaybook():
            return "write-playbook"
        case StartWorker(id=i, budget_usd=b, on_budget=ob) if b is not None:
            shown = f"{b:.2f}" if round(b, 2) == b else f"{b:g}"  # a cent's fraction kept
            return f"start-worker {i} · budget ${shown}, {ob} at it"  # the journal keeps it
        case StartWorker(id=i):
            return f"start-worker {i}"
        case KillWorker(id=i, reason=r):
            return f"kill-worker {i} · {one_line(r)}" if r.strip() else f"kill-worker {i}"
        case SteerSession(id=i):
            return f"steer {i}"
        case SendKey(id=i, keys=k):
            return f"key {i} · {one_line(' '.join(k))}"
        case RestartSession(id=i):
            return f"restart {i}"
        case SendNotification(message=m):
            return f"notify · {one_line(m)}"
        case WriteSchedule(name=n, in_s=i, every_s=e, cron=c, tz=z):
            when = (
                f"in {i}s"
                if i is not None
                else f"every {e}s"
                if e is not None
                else f"cron '{one_line(c or '')}'" + (f" {z}" if z else "")
            )
            return f"write-schedule {n} · {when}"
        case DropSchedule(name=n):
            return f"drop-schedule {n}"
    raise AssertionError(f"unhandled action {action!r}")


def goal_of(action: Action) -> str | None:
    """The goal/worker id an action moves (fairness stamps it); None for untargeted moves."""
    if isinstance(action, WriteGoal | ArchiveGoal):
        return action.id
    if isinstance(action, StartWorker | KillWorker | SteerSession | SendKey | RestartSession):
        return _strip_worker_prefix(action.id)
    return None
