"""Per-session files, liveness and cleanup: everything that works without a supervisor.

Layout `root/sessions/<id>/`: meta.json (once), status.json (every transition, temp+rename),
output.log (raw PTY bytes: a symlink into log/, where it rotates, logfiles.py), lock (flock
held by the supervisor for its whole life), note (flag).
Liveness = state starting|running AND the lock is held: the kernel drops a flock when its
holder dies, so a crashed supervisor or a reused pid can never look alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from operator import attrgetter
from typing import TYPE_CHECKING, NamedTuple

from looop.core import cgroup
from looop.home import store
from looop.home.errors import CorruptState
from looop.home.logfiles import DIR, MAX_FILES, files_dir, numbered, stat_log
from looop.home.sessionfiles import (
    ENDED,
    check_id,
    int_or_none,
    lock_held,
    no_session,
    read_meta,
    read_state,
    read_status,
    remove_tree,
    session_ids,
    unreadable,
)

# The supervisor's own needs live in sessionfiles.py (no pathlib, no re); their names stay here too.
from looop.home.sessionfiles import SessionError as SessionError
from looop.home.where import SESSIONS
from looop.sessions.states import LIVE, TERMINAL, SessionState

# status.json's error once a reader recorded the end a crashed supervisor never wrote
SUPERVISOR_DIED = "the supervisor died without recording an end (killed or crashed)"

# The state strings on disk; the enum (states.py) is where rooms meet and where they change.
STATES = tuple(s.value for s in SessionState)

META = "meta.json"
STATUS = "status.json"
LOG = "output.log"
LOCK = "lock"
NOTE = "note"
SUPERVISOR_ERR = "supervisor.err"

SUN_PATH_MAX = 107


validate_id = check_id


AGENT_TYPED = "typed_by_agent"  # in a session's folder: the agent surface that typed last


if TYPE_CHECKING:
    from looop.home.store import AnyPath


def sessions_dir(root: AnyPath) -> str:
    return os.path.join(root, SESSIONS)


def session_dir(root: AnyPath, sid: str) -> str:
    return os.path.join(root, SESSIONS, validate_id(sid))


def typed_mark(root: AnyPath, sid: str) -> str:
    """The file saying which agent surface typed into session `sid` last (act/reach.py)."""
    return os.path.join(session_dir(root, sid), AGENT_TYPED)


# -- control socket path ------------------------------------------------------------------


# -- meta / status / note -----------------------------------------------------------------


# -- the Session view ---------------------------------------------------------------------


class Session(NamedTuple):
    """One session as read from disk. A NamedTuple, not a dataclass: `looop status` lists
    sessions on its fast path, and importing dataclasses (and inspect) costs milliseconds."""

    id: str
    cmd: list[str]
    state: str
    alive: bool
    exit_code: int | None
    signaled: bool
    started_at: str
    last_change: str
    note: str | None
    child_pid: int | None
    cols: int
    rows: int
    output_bytes: int
    dir: str
    label: str
    supervisor_pid: int | None = None
    error: str | None = None
    contain: str | None = None  # what kills what its runs leave: cgroup, sweep (None: older)
    prompt: str | None = None  # what its screen, quiet, asks (sessions/lifecycle)
    limit: str | None = None  # the kernel bound it was killed at: memory, pids (supervisor)

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, label={self.label!r}, alive={self.alive})"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def dead(self) -> bool:
        """The supervisor vanished without recording an end (crash, kill -9, reboot)."""
        return not self.alive and self.state in LIVE

    @property
    def supervisor_died(self) -> bool:
        """Dead now, or its end was recorded for it afterwards (mark_dead)."""
        return self.dead or self.error == SUPERVISOR_DIED


# the fields a Session shares with the light listing's dict (sessionfiles.read_state)
SHARED = ("id", "state", "alive", "exit_code", "started_at", "last_change", "note", "label",
          "contain", "prompt", "limit")  # fmt: skip


def load_session(sdir: str) -> Session | None:
    """The session in `sdir`; None when it has no meta.json. Raises CorruptState on a bad one."""
    got = read_state(sdir)
    if got is None:
        return None
    meta, status, light = got
    err = status.get("error")
    return Session(
        **{k: light[k] for k in SHARED},
        cmd=[str(a) for a in meta["cmd"]],
        signaled=bool(status.get("signaled", False)),
        child_pid=int_or_none(status.get("child_pid")),
        cols=int_or_none(status.get("cols")) or 80,
        rows=int_or_none(status.get("rows")) or 24,
        output_bytes=(stat_log(sdir) or (0,))[0],  # every byte of this run's log, rotated too
        dir=sdir,
        supervisor_pid=int_or_none(meta.get("supervisor_pid")),
        error=err if isinstance(err, str) else None,
    )


class Block(tuple[Session, ...]):
    """The finished sessions a listing passed unread, one value that stays the same object
    while they stay (Kept.block), so what a beat made of them holds while it does: a beat's
    cost stays flat in the workers kept. `recorded`: the outcome records that hold every
    one's outcome (loop/ended.record_ends)."""

    recorded: object = None


class Kept(dict[str, tuple[tuple[int, int, int], "Session"]]):
    """list_sessions' memory across listings (the pulse's): each finished session read, under
    its folder's (inode, mtime, ctime) then; the sessions folder's stamp and names then."""

    folder: tuple[int, int, int] | None = None
    names: tuple[str, ...] = ()
    oldest: float | None = None  # the oldest folder's mtime of those kept (prune_aged)
    unread: tuple[str, ...] = ()  # the names of those not kept: read at each listing
    block: Block = Block()  # those kept, as one value


class Listing(list[Session]):
    """A listing with the pulse's memory: every session, and apart the finished ones it passed
    unread (`block`) and the rest (`fresh`: read now, a running or dead one among them)."""

    def __init__(self, every: list[Session], block: Block, fresh: list[Session]) -> None:
        super().__init__(every)
        self.block, self.fresh = block, fresh


def at_work(listed: list[Session]) -> list[Session]:
    """The sessions of a listing that may run or have died unrecorded: all but its block."""
    return listed.fresh if isinstance(listed, Listing) else listed


_NEWEST = attrgetter("last_change")


def list_sessions(root: AnyPath, kept: Kept | None = None) -> list[Session]:
    """Every session, newest last_change first; dirs with missing/unreadable meta skipped.
    `kept`: the caller's memory across listings (the pulse's), updated here: a session whose
    `ended` mark was there when it was read is not read again while the sessions folder stays
    as it was (one stat for them all: a worker started, run again, removed or pruned changes
    it, a flag too: flag) and, once it changed, while its own folder stays (one stat each)."""
    base, prefix = sessions_dir(root), os.path.join(root, SESSIONS, "")
    memo, folder = (Kept(), None) if kept is None else (kept, store.settled(base))
    same = folder is not None and memo.folder == folder
    names = memo.names if same else tuple(session_ids(str(root)))
    # the folder as it was: each finished one kept is as it was too, none looked at (the
    # memory grows in place: only one that ended since joins it)
    out: list[Session] = list(memo.block) if same else []
    fresh, rest = memo if same else Kept(), []
    joined = not same
    for name in memo.unread if same else names:
        was = memo.get(name)
        key = store.settled(prefix + name) if kept is not None else None
        hit = was if was and was[0] == key else None
        try:
            s = hit[1] if hit else load_session(prefix + name)
        except (CorruptState, OSError):
            continue
        if s is None:
            continue
        out.append(s)
        if key is not None and s.finished and (hit or os.path.exists(prefix + name + "/" + ENDED)):
            fresh[name] = hit or (key, s)
            joined = True
        else:
            rest.append(s)
    out.sort(key=_NEWEST, reverse=True)  # the block in order already: one merge
    if kept is None:
        return out
    if joined:
        kept.oldest = min((v[0][1] / 1e9 for v in fresh.values()), default=None)
        kept.unread = tuple(n for n in names if n not in fresh)
        block = Block(sorted((s for _, s in fresh.values()), key=_NEWEST, reverse=True))
        kept.block = kept.block if block == kept.block else block  # the same ones: as it was
    if not same:
        kept.clear()
        kept.update(fresh)
    kept.folder, kept.names = folder, names
    return Listing(out, kept.block, rest)


def get_session(root: AnyPath, sid: str) -> Session:
    sdir = session_dir(root, sid)
    try:
        s = load_session(sdir)
    except CorruptState as e:
        raise unreadable(sid, e) from e
    if s is None:
        raise no_session(root, sid)
    return s


def wait_code(s: Session) -> int | None:
    """The `wait` exit code of a session that is over, None while it still runs."""
    if s.alive:
        return None
    if s.state == SessionState.EXITED:
        return s.exit_code if s.exit_code is not None else 0
    if s.state == SessionState.KILLED:
        return s.exit_code if s.exit_code is not None else 130
    return 137  # the supervisor died without recording an end


def mark_dead(sdir: str, stamp: str) -> bool:
    """Record the end a crashed supervisor never wrote: status.json stops saying running.

    Only with the session lock in hand (so no supervisor lives) and only if the status still
    reads live under it; True when it wrote. `stamp` is the caller's UTC time for
    last_change."""
    try:
        fd = os.open(os.path.join(sdir, LOCK), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a supervisor holds it: alive after all
        status = read_status(sdir)
        if status is None or status.get("state") not in LIVE:
            return False
        status.update(
            state=SessionState.KILLED.value,
            exit_code=137,
            signaled=True,
            error=SUPERVISOR_DIED,
            last_change=stamp,
        )
        survivors = end_leftovers(sdir)
        if survivors is not None:
            status["survivors"] = survivors
        try:
            store.write_json(os.path.join(sdir, STATUS), status)
        except OSError:
            return False  # a read-only data dir: readers still call it dead from the lock
        return True
    finally:
        os.close(fd)  # closing drops the flock


def end_leftovers(sdir: str) -> int | None:
    """Kill what a dead supervisor's run left in its cgroup (a child that ignored the hangup,
    a setsid daemon); how many outlived SIGKILL, None without a cgroup to look in. Call it
    holding the session lock: no supervisor is alive to do it."""
    group = run_group(sdir)
    return None if group is None else cgroup.end(group)


def run_group(sdir: str) -> cgroup.Group | None:
    """The session's run group, as its supervisor recorded it (only a `looop` folder's is
    believed: cgroup.adopt)."""
    try:
        meta = read_meta(sdir)
    except (CorruptState, OSError):
        return None
    path = (meta or {}).get("cgroup")
    if not isinstance(path, str) or not path.endswith("-" + os.path.basename(sdir)):
        return None
    return cgroup.adopt(path)


def settle_dead(listed: list[Session], stamp: str) -> list[str]:
    """Record the end of every session in `listed` (a listing, the beat's: no status read
    again) whose supervisor died without writing one (a SIGKILL, the OOM killer): status.json
    stops saying running. The ids it wrote, each once."""
    dead = sorted((s for s in at_work(listed) if s.dead), key=attrgetter("id"))
    return [s.id for s in dead if mark_dead(s.dir, stamp)]


# -- cleanup ------------------------------------------------------------------------------


def _is_corpse(sdir: str) -> bool:
    """Finished, or never finished but its supervisor is gone. Unparseable meta: never.
    A running one is known by its status and lock alone (every beat asks of every worker)."""
    status = read_status(sdir)
    finished = status is not None and status.get("state") in TERMINAL
    if not finished and lock_held(sdir):
        return False
    try:
        meta = read_meta(sdir)
    except (CorruptState, OSError):
        return False
    if meta is None:
        return False
    if finished:
        _let_go(sdir)
        return True
    return not lock_held(sdir)


FINISH_WAIT_S = 5.0  # a finished supervisor's last writes take ms: a stuck one is not waited on


def _let_go(sdir: str) -> None:
    """A finished session's supervisor still writes its last files (the `ended` mark after the
    final status) until it lets go of its lock: wait for that, briefly, so removing the folder
    never races them (ENOTEMPTY), nor a reused id's new run gets the old run's `ended`."""
    end = time.monotonic() + FINISH_WAIT_S
    while lock_held(sdir) and time.monotonic() < end:
        time.sleep(0.002)


def _remove_dir(sdir: str) -> bool:
    end_leftovers(sdir)  # its cgroup goes with it: a killed supervisor could not remove it
    return remove_tree(sdir)


# The pulse's session is never pruned: a stopped pulse's log is the only record of why it
# stopped. The next `up` clears it for its new run, keeping the old log as output.log.1 (reuse).
KEPT = frozenset({"pulse"})


def prune_aged(
    root: AnyPath,
    max_age_s: float,
    now: float,
    keep: frozenset[str] = KEPT,
    kept: Kept | None = None,
) -> list[str]:
    """Remove corpses whose dir is at least `max_age_s` old (0 = every corpse) but those in
    `keep`; their ids. `kept`: list_sessions' memory, as it just listed and stat'ed them."""
    prefix = os.path.join(root, SESSIONS, "")
    removed: list[str] = []
    names = session_ids(str(root)) if kept is None else kept.names
    oldest = kept.oldest if kept is not None else None
    if kept is not None and oldest is not None and max_age_s > 0 and now - oldest < max_age_s:
        names = kept.unread  # none kept is of age yet
    for name in names:
        try:  # the age first: a worker kept within its time costs the beat one stat, or none
            hit = kept.get(name) if kept is not None else None
            age = now - (hit[0][1] / 1e9 if hit is not None else os.stat(prefix + name).st_mtime)
        except OSError:
            continue  # age unknown: keep
        if name in keep or (max_age_s > 0 and age < max_age_s):
            continue
        if _is_corpse(prefix + name) and _remove_dir(prefix + name):
            removed.append(name)
    return sorted(removed)  # a sort of the few gone, not of every worker kept


def reap(root: AnyPath, sid: str) -> bool:
    """Remove one corpse so its id can be reused; False when it is live, unreadable or absent."""
    sdir = session_dir(root, sid)
    return _is_corpse(sdir) and _remove_dir(sdir)


def reuse(root: AnyPath, sid: str, keep: int = MAX_FILES - 1) -> bool:
    """Clear a corpse for a new run of the same id, keeping the newest `keep` files of its
    earlier output (`output.log.1` is the end of the run before, `.2` what came before that,
    a rotated piece or a run before): the log of a run that died is what a user reads to see
    why. They count in the new run's log cap (logfiles.py): its rotations push out the oldest.
    False when it is live, unreadable or could not be cleared."""
    sdir = session_dir(root, sid)
    if not _is_corpse(sdir):
        return False
    fdir = files_dir(sdir)
    olds = [(os.path.join(fdir, numbered(n)), n + 1) for n in range(max(0, keep))]
    kept = [(src, n) for src, n in olds if os.path.isfile(src) and not os.path.islink(src)]
    hold = os.path.join(sessions_dir(root), f".keep-{sid}-{os.getpid()}-{os.urandom(3).hex()}")
    if kept:
        try:
            os.mkdir(hold, 0o700)
            for src, n in kept:
                os.rename(src, os.path.join(hold, f"{LOG}.{n}"))
        except OSError:
            return False  # the corpse stays as it was; the logs with it or in `hold`
    if not _remove_dir(sdir) and os.path.exists(sdir):
        return False
    if kept:
        # failed: the logs wait in `hold` (a dot dir no listing shows); the run goes on
        with contextlib.suppress(OSError):
            os.makedirs(os.path.join(sdir, DIR), mode=0o700, exist_ok=True)
            for _src, n in kept:
                os.rename(os.path.join(hold, f"{LOG}.{n}"), os.path.join(sdir, DIR, f"{LOG}.{n}"))
            os.rmdir(hold)
    return True
