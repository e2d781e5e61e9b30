"""Every location in the data dir, resolved once and passed everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from looop.home import where

if TYPE_CHECKING:
    from collections.abc import Mapping


# the Paths folders (besides the data dir) that looop writes state files into atomically
_WRITTEN = (
    "goals goals_archive sensors snapshots schedules asks answers tells claims prompts verify "
    "vouched playbook_history reports worktrees"
)


class _Under:
    """A path in the data dir, read as an attribute of Paths: `journal = _Under(where.JOURNAL)`."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, paths: Paths, owner: object = None) -> Path:
        return paths.data.joinpath(*self.parts)


class Paths:
    """Immutable value: the data dir and the config file; every other path derives from them."""

    __slots__ = ("config", "data")
    data: Path
    config: Path

    def __init__(self, data: Path, config: Path) -> None:
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "config", config)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Paths is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and (self.data, self.config) == (other.data, other.config)

    def __hash__(self) -> int:
        return hash((self.data, self.config))

    def __repr__(self) -> str:
        return f"Paths(data={self.data!r}, config={self.config!r})"

    @classmethod
    def resolve(cls, env: Mapping[str, str], cwd: Path) -> Paths:
        """$LOOOP_DATA_DIR, else ${XDG_STATE_HOME:-~/.local/state}/looop; absolutised."""
        data, config = where.resolve(env, str(cwd))
        return cls(data=Path(data), config=Path(config))

    @classmethod
    def at(cls, data: Path) -> Paths:
        return cls(data=data, config=data / "config.json")

    # durable memory
    playbook = _Under(where.PLAYBOOK)
    playbook_history = _Under("playbook.d")
    goals = _Under(where.GOALS)
    goals_archive = _Under(where.GOALS, "archive")
    sensors = _Under("sensors")
    journal = _Under(where.JOURNAL)
    reports = _Under(where.REPORTS)
    # scratch and coordination
    snapshots = _Under(where.SNAPSHOTS)
    runs = _Under("runs")
    prompts = _Under(where.PROMPTS)
    # Repo workers' checkout records (worktrees/<id>.json; the checkouts are in `checkouts`, and
    # worktrees/<id> of a home made before that).
    worktrees = _Under(where.WORKTREES)
    # One folder per sandboxed worker (sandbox/<id>: srt.json, its knobs; what it writes is in its
    # room, `rooms`), +tick's and +run_shell's.
    sandbox = _Under(where.SANDBOX)

    @property
    def work(self) -> Path:
        """What sandboxed boxes write, beside the data dir and never in it (`<data>.work`): a
        box never writes the data dir, so nothing the pulse reads is a box's making."""
        return self.data.parent / f"{self.data.name}.work"

    @property
    def checkouts(self) -> Path:
        """Repo workers' git worktrees and clones (checkouts/<id>), beside the data dir: a box
        writes its checkout, never the data dir (their records stay in `worktrees`)."""
        return self.work / "checkouts"

    @property
    def rooms(self) -> Path:
        """One folder per sandboxed worker's box (rooms/<id>: work/, tmp/, reports/)."""
        return self.work / "rooms"

    # Registered hosts (remote/hosts.py); hosts/workers/<id>.json: workers away.
    hosts = _Under(where.HOSTS)

    @property
    def host_workers(self) -> Path:
        return self.hosts / where.HOST_WORKERS

    def host_record(self, wid: str) -> Path:
        """The home's record of worker `wid` started on another host (remote/hosts.py)."""
        return self.host_workers / f"{wid}.json"

    sessions = _Under(where.SESSIONS)
    claims = _Under(where.CLAIMS)
    asks = _Under(where.ASKS)
    answers = _Under(where.ANSWERS)
    tells = _Under(where.TELLS)
    schedules = _Under(where.SCHEDULES)
    # What each schedule has already fired (human/schedules: no second firing after the wall clock
    # steps back).
    schedule_marks = _Under(where.SCHEDULE_MARKS)
    verify = _Under(where.VERIFY)
    # Who wrote each sensor and verify, human or decision (core/provenance.py).
    vouched = _Under("vouched")
    lock_dir = _Under(where.LOCKS)
    lock_file = _Under(where.LOCKS, "lock")
    pid_file = _Under(where.LOCKS, "pid")
    # Serialises read-modify-write of small shared state files.
    state_lock = _Under(where.LOCKS, "state")
    # An unsandboxed decider's answer (`decision_file`).
    decision = _Under(where.DECISION)

    @property
    def decide_room(self) -> Path:
        """A sandboxed decider's one writable folder for its answer, beside the data dir."""
        return self.rooms / "+tick" / "answer"

    def decision_file(self, sandboxed: bool) -> Path:
        """Where the decider writes its one decision (the prompt names it, as do
        $LOOOP_DECISION and {{decision_file}}): `.decision.json` in the data dir, or in the
        decide room when it runs sandboxed, since a box writes nothing in the data dir."""
        return self.decide_room / ".decision.json" if sandboxed else self.decision

    tick_log = _Under("tick.log")
    events = _Under(where.EVENTS)
    cost_ledger = _Under(where.COST_LEDGER)

    # guard state (dot files)
    def state(self, name: str) -> Path:
        return self.data / name

    last_tick_hash = _Under(".last-tick-hash")
    backoff = _Under(".tick-backoff")
    goal_activity = _Under(".goal-activity.json")
    wal = _Under(".action-wal.json")
    last_failure = _Under(".last-failure.json")
    # Present while inotify is used up: the pulse wakes on its interval alone.
    clock_wakes = _Under(".clock-wakes")
    last_world = _Under(".last-world.json")
    last_shell = _Under(".last-shell.json")
    next_wake = _Under(".next-wake.json")
    alerts = _Under(".alerts.json")
    noop_at = _Under(".noop-at.json")
    signal_flap = _Under(".signal-flap.json")
    decide_ledger = _Under(where.DECIDE_LEDGER)
    cost_unmetered = _Under(where.COST_UNMETERED)
    gitignore = _Under(where.GITIGNORE)

    def goal(self, goal_id: str) -> Path:
        return self.goals / f"{goal_id}.md"

    def sensor(self, name: str) -> Path:
        return self.sensors / f"{name}.sh"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def written_dirs(self) -> list[Path]:
        """Every directory looop writes state into atomically (where a killed write leaves a
        temp file): the data dir, its state folders, each session's folder and each sandbox
        folder."""
        dirs = [self.data, *(getattr(self, name) for name in _WRITTEN.split())]
        for parent in (self.sessions, self.sandbox):
            try:
                dirs.extend(p for p in parent.iterdir() if p.is_dir())
            except OSError:
                pass
        return dirs

    def rel(self, p: Path) -> str:
        """Path relative to the data dir with '/' separators (hash markers, messages)."""
        try:
            return p.relative_to(self.data).as_posix()
        except ValueError:
            return str(p)
