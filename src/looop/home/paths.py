"""Every location in the data dir, resolved once and passed everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from looop.home import where

if TYPE_CHECKING:
    from collections.abc import Mapping


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
    @property
    def playbook(self) -> Path:
        return self.data / where.PLAYBOOK

    @property
    def playbook_history(self) -> Path:
        return self.data / "playbook.d"

    @property
    def goals(self) -> Path:
        return self.data / where.GOALS

    @property
    def goals_archive(self) -> Path:
        return self.data / where.GOALS / "archive"

    @property
    def sensors(self) -> Path:
        return self.data / "sensors"

    @property
    def journal(self) -> Path:
        return self.data / where.JOURNAL

    @property
    def reports(self) -> Path:
        return self.data / where.REPORTS

    # scratch and coordination
    @property
    def snapshots(self) -> Path:
        return self.data / where.SNAPSHOTS

    @property
    def runs(self) -> Path:
        return self.data / "runs"

    @property
    def prompts(self) -> Path:
        return self.data / where.PROMPTS

    @property
    def worktrees(self) -> Path:
        """Repo workers' checkout records (worktrees/<id>.json; the checkouts are in
        `checkouts`, and worktrees/<id> of a home made before that)."""
        return self.data / where.WORKTREES

    @property
    def sandbox(self) -> Path:
        """One folder per sandboxed worker (sandbox/<id>: srt.json, its knobs; what it writes is
        in its room, `rooms`), +tick's and +run_shell's."""
        return self.data / where.SANDBOX

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

    @property
    def hosts(self) -> Path:
        """Registered hosts (remote/hosts.py); hosts/workers/<id>.json: workers away."""
        return self.data / where.HOSTS

    @property
    def host_workers(self) -> Path:
        return self.hosts / where.HOST_WORKERS

    def host_record(self, wid: str) -> Path:
        """The home's record of worker `wid` started on another host (remote/hosts.py)."""
        return self.host_workers / f"{wid}.json"

    @property
    def sessions(self) -> Path:
        return self.data / where.SESSIONS

    @property
    def claims(self) -> Path:
        return self.data / where.CLAIMS

    @property
    def asks(self) -> Path:
        return self.data / where.ASKS

    @property
    def answers(self) -> Path:
        return self.data / where.ANSWERS

    @property
    def tells(self) -> Path:
        return self.data / where.TELLS

    @property
    def schedules(self) -> Path:
        return self.data / where.SCHEDULES

    @property
    def schedule_marks(self) -> Path:
        """What each schedule has already fired (human/schedules: no second firing after the
        wall clock steps back)."""
        return self.data / where.SCHEDULE_MARKS

    @property
    def verify(self) -> Path:
        return self.data / where.VERIFY

    @property
    def vouched(self) -> Path:
        """Who wrote each sensor and verify, human or decision (core/provenance.py)."""
        return self.data / "vouched"

    @property
    def lock_dir(self) -> Path:
        return self.data / where.LOCKS

    @property
    def lock_file(self) -> Path:
        return self.data / where.LOCKS / "lock"

    @property
    def pid_file(self) -> Path:
        return self.data / where.LOCKS / "pid"

    @property
    def state_lock(self) -> Path:
        """Serialises read-modify-write of small shared state files."""
        return self.data / where.LOCKS / "state"

    @property
    def decision(self) -> Path:
        """An unsandboxed decider's answer (`decision_file`)."""
        return self.data / where.DECISION

    @property
    def decide_room(self) -> Path:
        """A sandboxed decider's one writable folder for its answer, beside the data dir."""
        return self.rooms / "+tick" / "answer"

    def decision_file(self, sandboxed: bool) -> Path:
        """Where the decider writes its one decision (the prompt names it, as do
        $LOOOP_DECISION and {{decision_file}}): `.decision.json` in the data dir, or in the
        decide room when it runs sandboxed, since a box writes nothing in the data dir."""
        return self.decide_room / ".decision.json" if sandboxed else self.decision

    @property
    def tick_log(self) -> Path:
        return self.data / "tick.log"

    @property
    def events(self) -> Path:
        return self.data / where.EVENTS

    @property
    def cost_ledger(self) -> Path:
        return self.data / where.COST_LEDGER

    # guard state (dot files)
    def state(self, name: str) -> Path:
        return self.data / name

    @property
    def last_tick_hash(self) -> Path:
        return self.data / ".last-tick-hash"

    @property
    def backoff(self) -> Path:
        return self.data / ".tick-backoff"

    @property
    def goal_activity(self) -> Path:
        return self.data / ".goal-activity.json"

    @property
    def wal(self) -> Path:
        return self.data / ".action-wal.json"

    @property
    def last_failure(self) -> Path:
        return self.data / ".last-failure.json"

    @property
    def clock_wakes(self) -> Path:
        """Present while inotify is used up: the pulse wakes on its interval alone."""
        return self.data / ".clock-wakes"

    @property
    def last_world(self) -> Path:
        return self.data / ".last-world.json"

    @property
    def last_shell(self) -> Path:
        return self.data / ".last-shell.json"

    @property
    def next_wake(self) -> Path:
        return self.data / ".next-wake.json"

    @property
    def alerts(self) -> Path:
        return self.data / ".alerts.json"

    @property
    def noop_at(self) -> Path:
        return self.data / ".noop-at.json"

    @property
    def signal_flap(self) -> Path:
        return self.data / ".signal-flap.json"

    @property
    def decide_ledger(self) -> Path:
        return self.data / where.DECIDE_LEDGER

    @property
    def cost_unmetered(self) -> Path:
        return self.data / where.COST_UNMETERED

    @property
    def gitignore(self) -> Path:
        return self.data / where.GITIGNORE

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
        dirs = [
            self.data,
            self.goals,
            self.goals_archive,
            self.sensors,
            self.snapshots,
            self.schedules,
            self.asks,
            self.answers,
            self.tells,
            self.claims,
            self.prompts,
            self.verify,
            self.vouched,
            self.playbook_history,
            self.reports,
            self.worktrees,
        ]
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
