"""Reads the dashboard polls, kept per change: an answer's JSON is built once and served again
while the files it was built from are unchanged (their stat: inode, size, mtime) and the clock
is on the same second. The second bounds what no file shows (a process gone without a word:
its lock released, no file touched) and keeps `now` and the relative times true."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from looop.core.watching import Watcher
from looop.home import homes
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.where import (
    ANSWERS,
    ASKS,
    COST_LEDGER,
    EVENTS,
    GOALS,
    JOURNAL,
    LOCKS,
    SANDBOX,
    SCHEDULES,
    SESSIONS,
    SNAPSHOTS,
    runtime_base,
)

Stat = tuple[int, int, int] | None
Key = tuple[object, ...]
T = TypeVar("T")


def stat_of(path: str) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def state_inputs(paths: Paths, env: Mapping[str, str]) -> list[str]:
    """Every file and folder `looop status` reads (views/status.py gather_status), by path:
    a change to any of them changes the answer's key. Folders stand for the files written into
    them by rename (atomic writes): a new inode changes the folder's mtime."""
    data = os.fspath(paths.data)
    out = [
        data,  # .tick-backoff, .last-failure.json, .decide-ledger.json, … (renamed in)
        os.path.join(data, LOCKS),
        os.path.join(data, LOCKS, "pid"),
        os.path.join(data, LOCKS, "tick.pid"),
        os.fspath(paths.config),
        os.path.join(data, EVENTS),  # the appended files change in place
        os.path.join(data, JOURNAL),
        os.path.join(data, COST_LEDGER),
        os.path.join(data, SESSIONS),
        os.path.join(data, SNAPSHOTS),
        os.path.join(data, GOALS),
        os.path.join(data, SCHEDULES),
        os.path.join(data, SANDBOX),
        os.path.join(data, ASKS),  # read as they are now: a record linked in whole
        os.path.join(data, ANSWERS),
    ]
    try:
        names = os.listdir(os.path.join(data, SESSIONS))
    except OSError:
        names = []
    for name in sorted(names):
        sdir = os.path.join(data, SESSIONS, name)
        out += [sdir, os.path.join(sdir, "status.json"), os.path.join(sdir, "note")]
        out.append(os.path.join(data, SANDBOX, name, "srt.json"))
    try:  # the runtime registry `strays` reads
        out.append(homes.home_dir(runtime_base(env), data))
    except LooopError:  # a relative LOOOP_RUNTIME_DIR: status shows no strays
        pass
    return out


def key_of(clock: Clock, paths: Iterable[str], extra: object = None) -> Key:
    return (int(clock.now()), extra, *(stat_of(p) for p in paths))


# what `looop status` reads in the folders that also hold busier files (a worker's log)
# `lock`: its supervisor holds it open for writing, so the kernel reports it closed
# (IN_CLOSE_WRITE) when that process ends, even killed without a word
ANY = None  # a folder whose every entry counts
SESSION_FILES = frozenset({"status.json", "note", "meta.json", "lock"})
LOCK_FILES = frozenset({"pid", "tick.pid", "lock"})
SNAPSHOT_FILES = frozenset({"sys-schedules.json"})
REGISTRY_FILES = frozenset({"pulse-*"})  # the entries `strays` reads (home/homes.py)


class Changes:
    """A count that grows whenever a file `looop status` reads may have changed, from the
    house's inotify watcher (core/watching.py) on their folders: a read's key costs one read(2)
    that finds nothing, not a stat per file. Whoever rang `bells` is told when it grows (the
    live stream pushes the page a change). None from `open` where inotify is missing (not
    Linux, or out of instances): the caller stats the files instead."""

    def __init__(self, paths: Paths, env: Mapping[str, str], watcher: Watcher) -> None:
        self.paths, self.env, self.watcher = paths, env, watcher
        self.count = 0
        self.rescan = True
        self.bells: list[Callable[[], None]] = []

    @classmethod
    def open(cls, paths: Paths, env: Mapping[str, str]) -> Changes | None:
        watcher = Watcher()
        if not watcher.usable:
            watcher.close()
            return None
        return cls(paths, env, watcher)

    def close(self) -> None:
        self.watcher.close()

    def fileno(self) -> int | None:
        return self.watcher.fileno()

    def folders(self) -> list[tuple[str, frozenset[str] | None]]:
        """(folder, the names in it that count, or ANY) for every folder status reads in."""
        data = os.fspath(self.paths.data)
        config = os.fspath(self.paths.config)
        out: list[tuple[str, frozenset[str] | None]] = [
            (data, ANY),  # the appended files and the state files written by rename
            (os.path.join(data, LOCKS), LOCK_FILES),
            (os.path.dirname(config) or ".", frozenset({os.path.basename(config)})),
            (os.path.join(data, SESSIONS), ANY),
            (os.path.join(data, SNAPSHOTS), SNAPSHOT_FILES),
            (os.path.join(data, GOALS), ANY),
            (os.path.join(data, SCHEDULES), ANY),
            (os.path.join(data, SANDBOX), ANY),
            (os.path.join(data, ASKS), ANY),
            (os.path.join(data, ANSWERS), ANY),
        ]
        for sub, names in (("sessions", SESSION_FILES), ("sandbox", frozenset({"srt.json"}))):
            base = os.path.join(data, sub)
            try:
                ids = os.listdir(base)
            except OSError:
                ids = []
            out += [(os.path.join(base, i), names) for i in ids]
        try:  # its pulses' entries, not the heartbeat the pulse writes while it sleeps
            out.append((homes.home_dir(runtime_base(self.env), data), REGISTRY_FILES))
        except LooopError:  # a relative LOOOP_RUNTIME_DIR: status shows no strays either
            pass
        return out

    def _watch_all(self) -> None:
        self.rescan = False
        self.watcher.forget()
        for folder, names in self.folders():
            if names is ANY:
                if os.path.isdir(folder):  # one not made yet: its name in a watched parent
                    self.watcher.watch(folder)
                continue
            for name in names:
                self.watcher.watch(os.path.join(folder, name))

    def now(self) -> int:
        """The count after every change the kernel has queued so far."""
        before = self.count
        if self.watcher.drain():
            self.count += 1
        if self.rescan or self.watcher.stale:
            self._watch_all()
            self.count += 1  # what changed before the new watches took is not known
        if self.count != before:
            for ring in list(self.bells):
                ring()
        return self.count


class Kept(Generic[T]):
    """One read's answer (bytes, or what its answers are made from), built off the event loop
    and kept while its key holds. Readers arriving while it is being built wait for that build
    rather than start their own; a reader that goes away does not stop it."""

    def __init__(self, key: Callable[[], Key], build: Callable[[], T]) -> None:
        self.key, self.build = key, build
        self._kept: tuple[Key, T] | None = None
        self._building: tuple[Key, asyncio.Task[T]] | None = None
        self.builds = 0  # how many times it was built (a test and the bench read it)

    async def get(self) -> T:
        key = self.key()  # taken before the build: a change while building is seen next time
        kept = self._kept
        if kept is not None and kept[0] == key:
            return kept[1]
        building = self._building
        if building is None or building[0] != key:
            task = asyncio.ensure_future(run_in_threadpool(self._build, key))
            task.add_done_callback(self._built)
            building = self._building = (key, task)
        return await asyncio.shield(building[1])

    def _built(self, task: asyncio.Task[T]) -> None:
        # a failed build is not kept: the next reader tries again
        if self._building is not None and self._building[1] is task:
            self._building = None
        if not task.cancelled():
            task.exception()  # retrieved here: its readers got it, or there were none

    def _build(self, key: Key) -> T:
        self.builds += 1
        body = self.build()
        self._kept = (key, body)  # one assignment: a reader sees the old pair or the new
        return body
