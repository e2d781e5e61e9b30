"""The typed shapes of the loop's read views: `looop status` (gather_status) and `looop runs`
(list_runs / show_run). Each is the JSON the verb prints with --json, key for key.

status.py and views/fleet.py import this only under TYPE_CHECKING: `looop status` must not
load `typing` at runtime."""

from __future__ import annotations

from typing import Any, NotRequired, Required, TypedDict

from looop.spend.views import SpendError, SpendStatus


class Stamp(TypedDict):
    """A time as unix seconds and the local form status prints (both None: never)."""

    ts: int | None
    at: str | None


class LimitedView(Stamp):
    """The runner waits out its provider's usage limit until this time."""

    runner: str | None
    said: str | None


class PulseView(TypedDict):
    running: bool
    pid: str  # '' when not running (or not yet written)
    interval_s: int | None  # None when the config is broken
    restarts: int  # automatic restarts of the pulse since `up` (its session's supervisor)
    last_cause: str | None  # why it last ended: exit code or signal, and its last line
    restarting: bool  # crashed, and its supervisor waits out the delay before the next run
    # … or its supervisor is lost while `up` wants it: a looop verb starts it again (home/revive)
    revived: bool
    strays: list[str]  # pids of this home's pulses on a data dir removed or replaced under them


class TickHolder(TypedDict):
    pid: str  # a foreground `looop tick` holding the beat


class BeatView(Stamp):
    """The last beat from events.jsonl: when it started and how it ended."""

    outcome: str  # decided | skipped | backoff | failed | error | breaker | running | ...
    detail: str
    run_id: Any  # as recorded in events.jsonl (a string, or None)
    ended_ts: int | None


class NextBeat(Stamp):
    reason: str


class LastTick(Stamp):
    hash: str  # the world hash last committed


class WorkerView(TypedDict, total=False):
    """One worker session, or {"error": ...} when the sessions cannot be listed."""

    id: str
    state: str
    label: str
    alive: bool
    exit_code: int | None
    flagged: bool
    note: str | None
    sandboxed: bool
    error: str


class SchedulesView(TypedDict):
    names: list[str]
    due: list[str]
    invalid: list[str]


class StatusView(TypedDict):
    """`looop status --json`."""

    data_dir: str
    config: str
    config_error: str | None
    config_warnings: list[str]  # keys looop does not read (typos), bad LOOOP_* values
    runner: str | None
    web: str | None  # the running `looop web`'s URL, without its token
    now: Stamp
    pulse: PulseView
    pulse_alive: bool  # v1.0's name for pulse.running
    paused: bool  # stopped by a pause (workers kept), no start since: every face says so
    health: str  # stopped | restarting | tick | failing | ok
    failing_streak: int
    tick: TickHolder | None
    last_beat: BeatView | None
    next_beat: NextBeat | None
    retry: Stamp | None
    limited: LimitedView | None  # the provider usage limit being waited out
    # accounts in a usage window (home/usagewindows.view), with the starts held for each, and
    # a one-line error for a corrupt record
    windows: list[dict[str, Any]]
    windows_error: str | None
    last_tick: LastTick | None
    backoff: dict[str, Any] | None  # .tick-backoff as stored (or {"error": ...})
    last_failure: dict[str, Any] | None  # .last-failure.json as stored (or {"error": ...})
    disk_full: str  # "" unless the data dir's disk is full: why no beat records the world
    clock_wakes: str  # "" unless inotify is used up: why changes wake the pulse late
    goals: list[str]
    journal_tail: list[str]
    workers: list[WorkerView]
    workers_finished: int  # counted even where `workers` lists the live ones alone
    spend: SpendStatus | SpendError | None  # None when the config is broken
    savings: dict[str, Any]  # home/savings.savings_view: decides, skipped beats, dollars saved
    asks: list[Any]  # the unanswered ask ids as they are now; with --json v1.0's ask records
    schedules: SchedulesView
    # v1.0's `state --json` fields, filled by status.add_v1_fields for --json only
    world_hash: NotRequired[str]
    snapshots: NotRequired[dict[str, Any]]
    ask_ids: NotRequired[list[str]]


class RunRow(TypedDict, total=False):
    """One row of `looop runs --json`: runs/<id>/result.json plus a summary line. A run with no
    readable result yet has only run_id and status ("running?")."""

    v: int
    run_id: Required[str]
    runner: str
    status: Required[str]  # decided | failed | running? | ...
    code: str | None
    error: str | None
    action: str | None
    journal: str | None
    secs: float
    exit_code: int | None
    ts: int
    summary: str


class RunDetail(RunRow, total=False):
    """`looop runs show ID --json`: the row plus where its prompt and output are."""

    prompt: Required[str]
    output: Required[str]
    output_text: Required[str]
