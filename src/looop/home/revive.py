"""The second level of the pulse's supervision: any looop of the home brings a lost pulse back.

`up` writes `.lock/wanted.json` (the pulse is wanted up) and `down` removes it. The pulse's
session supervisor restarts a pulse that fails; when that supervisor itself is gone (an OOM
kill, a stray `kill -9`: its PTY hangs up and the pulse ends its beat and stops), the next
looop of the home to look — a verb (`status`, `ls`), or the long-lived ones on a timer of
their own (the session host, the web server: `Keeper`) — finds the pulse wanted, no pulse
holding the beat lock and no supervisor holding the pulse session's lock, and starts
`looop up --revive` detached: it takes `up`'s lock, looks again and starts the pulse with the
cause and the restart count carried over, so `status` names the real, latest cause. Revivals
back off (1 s doubling to a minute) on CLOCK_BOOTTIME, which every process reads alike and
which counts a suspend: a revival tried before one is long past after it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from looop.home import locks, store, where
from looop.home.errors import CorruptState
from looop.home.sessionfiles import LIVE_NAMES, lock_held, read_meta, read_status
from looop.home.stamps import utc_stamp

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from looop.home.clock import Clock

WANTED = "wanted.json"
PULSE = "pulse"
REVIVE_EVERY_S = 2.0  # how often a long-lived looop (host, web) looks for a lost pulse (the
# host: only while one is wanted and no supervisor's exit can tell it)
HOME_LOST_EXIT = 3  # the pulse left a home that is gone on purpose: not brought back
FIRST_S, CAP_S = 1.0, 60.0  # the revivals' backoff: doubling from the first to the cap
STREAK_RESET_S = 2 * CAP_S  # a revival this long ago healed: the next starts small again


def wanted_file(data: str) -> str:
    return where.join(where.join(data, where.LOCKS), WANTED)


def read_wanted(data: str) -> dict[str, Any] | None:
    """The record of `up` without a `down`, None when there is none (or it is unreadable:
    nothing is revived on a record nobody can read)."""
    try:
        return store.read_json_object(wanted_file(data))
    except (CorruptState, OSError):
        return None


def want(data: str, clock: Clock, json_log: bool = False, path: str | None = None) -> None:
    """`up`: the pulse is wanted up from now on (an earlier record's revivals start over).
    `path`: `up`'s PATH, which a revival started from another shell runs with (the runner
    `up` found must be found again; a PATH names no secret)."""
    rec: dict[str, Any] = dict(since=utc_stamp(clock.now()), pid=os.getpid(), json_log=json_log)
    if path:
        rec["path"] = path
    _put(data, rec)  # a full or read-only data dir: the pulse starts; only its revival is lost


def _put(data: str, rec: dict[str, Any]) -> bool:
    """Write the record; False when the data dir would not take it."""
    try:
        store.write_json(wanted_file(data), rec, durable=False)
    except OSError:
        return False
    return True


def failed(data: str, error: str) -> None:
    """A revival could not start the pulse: why, for `status` (the next one tries again)."""
    rec = read_wanted(data)
    if rec is None:
        return
    rec["error"] = error
    _put(data, rec)


def unwant(data: str) -> None:
    """`down`: nobody wants the pulse up any more."""
    try:
        store.remove(wanted_file(data))
    except OSError:
        pass


def lost_cause(data: str) -> str | None:
    """Why the pulse's session is not running it, when its supervisor is gone without having
    ended it: None while a supervisor holds the session (running it, or waiting to restart)."""
    sdir = where.join(where.join(data, where.SESSIONS), PULSE)
    if lock_held(sdir):
        return None
    status = read_status(sdir) or {}
    died = str(status.get("error") or "").startswith("the supervisor died")
    if status.get("state") in LIVE_NAMES or died:
        pid = _supervisor_pid(sdir)
        return f"its supervisor{f' (pid {pid})' if pid else ''} died (killed or crashed)"
    if not status:
        return "it was not running"
    code = status.get("exit_code")
    if code == HOME_LOST_EXIT:
        return None  # it left a home that is gone: `up` starts it on the new one
    why = status.get("error") or (f"exit {code}" if code is not None else status.get("state"))
    return f"it stopped ({why}) with no `looop down`"


def pulse_supervisor(data: str) -> int | None:
    """The pid of the supervisor holding the pulse's session; None when none holds it."""
    sdir = where.join(where.join(data, where.SESSIONS), PULSE)
    return _supervisor_pid(sdir) if lock_held(sdir) else None


def _supervisor_pid(sdir: str) -> int | None:
    try:
        pid = (read_meta(sdir) or {}).get("supervisor_pid")
    except (CorruptState, OSError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def pending(data: str) -> str | None:
    """The cause, when the pulse is wanted up and nothing runs it: the lock of the beat free
    and no supervisor holding its session. None otherwise (up, stopped on purpose, left)."""
    if read_wanted(data) is None:
        return None
    if locks.flock_held(where.join(where.join(data, where.LOCKS), "lock")):
        return None  # a pulse (or a foreground tick) holds the beat
    return lost_cause(data)


def revive(
    data: str,
    config: str,
    env: Mapping[str, str],
    clock: Clock,
    started: list[int] | None = None,
) -> str | None:
    """Start `looop up --revive` when the pulse is wanted and lost, within the backoff; the
    cause when it is lost (whether or not this call started the revival), else None.
    `started`: a long-lived caller's list, given the revival's pid to reap (`reap`)."""
    cause = pending(data)
    if cause is None:
        return None
    if locks.flock_held(where.join(where.join(data, where.LOCKS), "up")):
        return cause  # an `up` (or a revival) is starting it now: never a second one
    rec = read_wanted(data) or {}
    now = clock.boottime()
    tried, streak = rec.get("tried_boot"), rec.get("streak")
    streak = streak if isinstance(streak, int) and streak >= 0 else 0
    if isinstance(tried, (int, float)) and tried <= now:
        if now - tried < min(CAP_S, FIRST_S * (2 ** min(max(streak - 1, 0), 30))):
            return cause  # backing off: a later verb tries again
        if now - tried >= STREAK_RESET_S:
            streak = 0
    else:
        streak = 0  # never tried, or tried before this boot
    restarts = _restarts(data) + 1
    rec.update(tried_boot=now, streak=streak + 1, cause=cause, restarts=restarts)
    rec.pop("error", None)  # this try's own failure, if any, is written by it
    if not _put(data, rec):
        return cause  # with no record of the try there would be no backoff either
    path = rec.get("path")
    pid = _start(data, config, {**env, "PATH": path} if isinstance(path, str) and path else env)
    if pid is not None and started is not None:
        started.append(pid)
    return cause


def _restarts(data: str) -> int:
    status = read_status(where.join(where.join(data, where.SESSIONS), PULSE)) or {}
    n = status.get("restarts")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0


def _start(data: str, config: str, env: Mapping[str, str]) -> int | None:
    """`looop up --revive` in its own session, detached: this verb does not wait for it."""
    child = dict(env)
    child.update(LOOOP_DATA_DIR=data, LOOOP_CONFIG=config)
    null = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, fd, null, os.O_WRONLY if fd else os.O_RDONLY, 0) for fd in range(3)
    ]
    argv = [sys.executable, "-m", "looop", "up", "--revive"]
    try:
        return os.posix_spawn(sys.executable, argv, child, file_actions=actions, setsid=True)
    except OSError:
        return None  # no process to be had now: the next verb tries again after the backoff


def reap(started: list[int]) -> None:
    """Wait for the revivals of `started` that have ended (a verb exits before its revival
    does; a host or a web server lives on and must not keep them as zombies)."""
    for pid in list(started):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid  # reaped by someone else: nothing left to wait for
        if done:
            started.remove(pid)


class Keeper:
    """The revival check of a long-lived looop of the home (the session host, the web
    server): at most once every `every_s` on its monotonic clock, whenever it is asked."""

    def __init__(
        self, data: str, config: str, env: Mapping[str, str], clock: Clock, every_s: float
    ) -> None:
        self.data, self.config, self.env, self.clock = data, config, dict(env), clock
        self.every_s = every_s
        self.checked: float | None = None  # the monotonic clock at the last check
        self.started: list[int] = []  # revivals started and not yet reaped

    def tend(self) -> bool:
        """Check now if it is time (a wanted pulse lost: revived, within the backoff); True
        when this check started a revival."""
        mono = self.clock.monotonic()
        if self.checked is not None and 0 <= mono - self.checked < self.every_s:
            return False
        self.checked = mono
        reap(self.started)
        before = len(self.started)
        revive(self.data, self.config, self.env, self.clock, self.started)
        return len(self.started) > before
