"""Reads the dashboard polls, kept per change: an answer's JSON is built once and served again
while the files it was built from are unchanged (their stat: inode, size, mtime) and the clock
is on the same second. The second bounds what no file shows (a process gone without a word:
its lock released, no file touched) and keeps `now` and the relative times true."""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

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
    """Every file and folder `looop status` reads (home/status.py gather_status), by path:
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


# inotify(7): the kernel tells what changed, so a read's key costs one read(2) that finds
# nothing, not a stat per file (50 of them cost more than the framework's whole answer)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_ONLYDIR, IN_ISDIR = 0x4000, 0x1000000, 0x40000000
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then the name, NUL-padded
ANY = None  # a folder whose every entry counts
# what `looop status` reads in the folders that also hold busier files (a worker's log)
# `lock`: its supervisor holds it open for writing, so the kernel reports it closed
# (IN_CLOSE_WRITE) when that process ends, even killed without a word
SESSION_FILES = frozenset({"status.json", "note", "meta.json", "lock"})
LOCK_FILES = frozenset({"pid", "tick.pid", "lock"})
SNAPSHOT_FILES = frozenset({"sys-schedules.json"})


class Changes:
    """A count that grows whenever a file `looop status` reads may have changed, from
    inotify watches on their folders. None from `open` where inotify is missing (not Linux)
    or refused (the watch limit): the caller stats the files instead."""

    def __init__(self, paths: Paths, env: Mapping[str, str], fd: int, libc: Any) -> None:
        self.paths, self.env, self.fd, self.libc = paths, env, fd, libc
        self.count = 0
        self.watches: dict[int, tuple[str, frozenset[str] | None]] = {}
        self.rescan = True

    @classmethod
    def open(cls, paths: Paths, env: Mapping[str, str]) -> Changes | None:
        if not sys.platform.startswith("linux"):
            return None

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        return cls(paths, env, fd, libc)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

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
        try:
            out.append((homes.home_dir(runtime_base(self.env), data), ANY))
        except LooopError:  # a relative LOOOP_RUNTIME_DIR: status shows no strays either
            pass
        return out

    def _watch_all(self) -> None:
        self.rescan = False
        self.watches.clear()
        for folder, names in self.folders():
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), MASK)
            if wd < 0:
                continue
            had = self.watches.get(wd)  # one folder named twice (the config beside the data)
            if had is not None:
                names = ANY if had[1] is ANY or names is ANY else had[1] | names
            self.watches[wd] = (folder, names)

    def now(self) -> int:
        """The count after every change the kernel has queued so far."""
        if self.rescan:
            self._watch_all()
            self.count += 1  # what changed before the new watches took is not known
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if self._take(buf):
                self.count += 1
            if self.rescan:
                self._watch_all()
        return self.count

    def _take(self, buf: bytes) -> bool:
        """Whether the events in `buf` change anything status reads (and notes a rescan
        when folders came or went)."""
        changed = False
        at = 0
        while at + EVENT.size <= len(buf):
            wd, mask, _, size = EVENT.unpack_from(buf, at)
            name = buf[at + EVENT.size : at + EVENT.size + size].rstrip(b"\0")
            at += EVENT.size + size
            if mask & IN_Q_OVERFLOW:
                self.rescan = changed = True
                continue
            names = self.watches.get(wd, ("", ANY))[1]
            if not name:  # the folder itself went or moved: watch what is there now
                self.rescan = changed = True
            elif names is ANY or os.fsdecode(name) in names:
                changed = True
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self.rescan = True  # a session's (or another read) folder came
        return changed


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
