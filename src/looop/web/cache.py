"""Reads the dashboard polls, kept per change: an answer's JSON is built once and served again
while the files it was built from are unchanged (their stat: inode, size, mtime) and the clock
is on the same second. The second bounds what no file shows (a process gone without a word:
its lock released, no file touched) and keeps `now` and the relative times true.

/sessions is kept the same way: the fleet's rows are read again only when a file they come
from changed (a status, a note, a supervisor's lock closed at its exit) or every REREAD_S
(what no file shows: a worker turning stuck, a usage window's reset). Between reads each
answer moves the ages on by the time gone since the read, so they stay true to the second.
Each answer carries a weak ETag naming the rows without their ages: a poller that sends it
back (If-None-Match) is told 304 while the fleet is the same, and moves the ages on itself."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import homes, where
from looop.home.clock import Clock
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.sessionfiles import list_light
from looop.spend.spent import BUDGETS
from looop.web import reads

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
    """Every file and folder `looop status` reads (views/status.py gather_status), by path,
    where inotify is missing: a change to any of them changes the answer's key. Folders stand
    for the files written into them by rename (atomic writes): a new inode changes the
    folder's mtime; the appended files change in place."""
    data = os.fspath(paths.data)
    out = [os.path.join(data, n) for n in (where.EVENTS, where.JOURNAL, where.COST_LEDGER)]
    for folder, names in folders(paths, env):
        out += [folder, *(os.path.join(folder, n) for n in names or () if "*" not in n)]
    return out


def seen(ctx: Ctx, changes: Changes | None) -> object:
    """What changed so far: the watches' count, or (no inotify) the stat of every input."""
    if changes is not None:
        return changes.now()
    return tuple(stat_of(p) for p in state_inputs(ctx.paths, ctx.env))


def cost_key(ctx: Ctx) -> Key:
    """What a read of the spend holds for: the ledger, its day totals and the local date."""
    data = os.fspath(ctx.paths.data)
    inputs = (os.path.join(data, n) for n in (where.COST_LEDGER, "cost", ".cost-days.json"))
    return (ctx.clock.local_tm(ctx.clock.now())[:3], *(stat_of(p) for p in inputs))


# what `looop status` reads in the folders that also hold busier files (a worker's log)
# `lock`: its supervisor holds it open for writing, so the kernel reports it closed
# (IN_CLOSE_WRITE) when that process ends, even killed without a word
ANY = None  # a folder whose every entry counts
SESSION_FILES = frozenset({"status.json", "note", "meta.json", "lock"})
LOCK_FILES = frozenset({"pid", "tick.pid", "lock"})
SNAPSHOT_FILES = frozenset({"sys-schedules.json"})
REGISTRY_FILES = frozenset({"pulse-*"})  # the entries `strays` reads (home/homes.py)


def folders(paths: Paths, env: Mapping[str, str]) -> list[tuple[str, frozenset[str] | None]]:
    """(folder, the names in it that count, or ANY) for every folder status reads in."""
    data = os.fspath(paths.data)
    config = os.fspath(paths.config)
    out: list[tuple[str, frozenset[str] | None]] = [
        (data, ANY),  # the appended files and the state files written by rename
        (os.path.join(data, where.LOCKS), LOCK_FILES),
        (os.path.dirname(config) or ".", frozenset({os.path.basename(config)})),
        (os.path.join(data, where.SNAPSHOTS), SNAPSHOT_FILES),
    ]
    w = where
    out += [(os.path.join(data, d), ANY) for d in (w.SESSIONS, w.GOALS, w.SCHEDULES, w.SANDBOX)]
    # budgets: a worker's ceiling and its pause at it (its health, and so the needs queue)
    out += [(os.path.join(data, d), ANY) for d in (w.ASKS, w.ANSWERS, BUDGETS)]
    for sub, names in ((where.SESSIONS, SESSION_FILES), (where.SANDBOX, frozenset({"srt.json"}))):
        base = os.path.join(data, sub)
        try:
            ids = sorted(os.listdir(base))
        except OSError:
            ids = []
        out += [(os.path.join(base, i), names) for i in ids]
    try:  # its pulses' entries, not the heartbeat the pulse writes while it sleeps
        out.append((homes.home_dir(where.runtime_base(env), data), REGISTRY_FILES))
    except LooopError:  # a relative LOOOP_RUNTIME_DIR: status shows no strays either
        pass
    return out


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

    def _watch_all(self) -> None:
        self.rescan = False
        self.watcher.forget()
        for folder, names in folders(self.paths, self.env):
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
    rather than start their own; a reader that goes away does not stop it. `get`'s arguments
    go to `build`: what the caller read already (another Kept's answer) that holds while
    this key does."""

    def __init__(self, key: Callable[..., Key], build: Callable[..., T]) -> None:
        self.key, self.build = key, build
        self._kept: tuple[Key, T] | None = None
        self._building: tuple[Key, asyncio.Task[T]] | None = None
        self.builds = 0  # how many times it was built (a test and the bench read it)

    async def get(self, *args: object) -> T:
        key = self.key()  # taken before the build: a change while building is seen next time
        kept = self._kept
        if kept is not None and kept[0] == key:
            return kept[1]
        building = self._building
        if building is None or building[0] != key:
            task = asyncio.ensure_future(run_in_threadpool(self._build, key, *args))
            task.add_done_callback(self._built)
            building = self._building = (key, task)
        return await asyncio.shield(building[1])

    def _built(self, task: asyncio.Task[T]) -> None:
        # a failed build is not kept: the next reader tries again
        if self._building is not None and self._building[1] is task:
            self._building = None
        if not task.cancelled():
            task.exception()  # retrieved here: its readers got it, or there were none

    def _build(self, key: Key, *args: object) -> T:
        self.builds += 1
        body = self.build(*args)
        self._kept = (key, body)  # one assignment: a reader sees the old pair or the new
        return body


# ---- /sessions kept per change
REREAD_S = 5  # the longest a row may wait for what only time changes
AGES = ("up_s", "uptime_s", "idle_s", "ask_age_s")  # each `now - when`: moved on per answer

Rows = list[dict[str, Any]]
Encode = Callable[[object], bytes]


class Read:
    """One reading of the fleet: its rows, when they were read and the tag of their content;
    `light`: the sessions' listing they were made from (/state's workers, the same walk)."""

    def __init__(self, rows: Rows, at: float, encode: Encode, light: Rows) -> None:
        self.rows, self.at, self.light = rows, at, light
        still = [{k: v for k, v in r.items() if k not in AGES} for r in rows]
        self.tag = 'W/"' + hashlib.sha256(encode(still)).hexdigest()[:20] + '"'

    def body(self, now: float, encode: Encode) -> bytes:
        gone = max(0.0, now - self.at)
        return encode([{k: _aged(k, v, gone) for k, v in r.items()} for r in self.rows])


def _aged(k: str, v: object, gone: float) -> object:
    """A row's value `gone` seconds on: an age grown by them, anything else as it was."""
    if k in AGES and isinstance(v, int | float) and not isinstance(v, bool):
        return v + gone
    return v


def steady(before: Rows, rows: Rows, at: float) -> None:
    """A last output within a second of the one read before is that one: it is derived from
    the monotonic clock (home/lastoutput.py), so it wobbles read to read, and a wobble is no
    change of the fleet (nor of its ETag)."""
    was = {r["id"]: r.get("last_output_unix") for r in before}
    for r in rows:
        old, new = was.get(r["id"]), r.get("last_output_unix")
        if isinstance(old, float) and isinstance(new, float) and abs(new - old) < 1.0:
            r["last_output_unix"] = old
            r["idle_s"] = at - old


def kept_fleet(ctx: Ctx, changes: Changes | None, every: bool, encode: Encode) -> Kept[Read]:
    """The fleet's rows (reads.sessions), read again only when its key moves; the sessions'
    listing they come from kept beside them for /state. Today's spend by worker is read again
    only when cost_key moves: loading the day totals is most of a fleet read on a home of a
    year of rows."""

    last: list[Read] = []
    spent: list[tuple[Key, dict[str, float]]] = []

    def build() -> Read:
        at, key = ctx.clock.now(), cost_key(ctx)
        if not spent or spent[0][0] != key:
            spent[:] = [(key, reads.spend_by_worker(ctx))]
        light = list_light(os.fspath(ctx.paths.data), not every)
        rows = reads.sessions(ctx, every, spent[0][1], light)
        if last:
            steady(last[0].rows, rows, at)
        last[:] = [Read(rows, at, encode, light)]
        return last[0]

    return Kept(lambda: (seen(ctx, changes), int(ctx.clock.now() // REREAD_S)), build)


async def answer(kept: Kept[Read], request: Request, clock: Clock, encode: Encode) -> Response:
    """The rows, or 304 when the asker holds them already (its ETag)."""
    got = await kept.get()
    head = {"ETag": got.tag, "Cache-Control": "no-cache"}
    if matches(request.headers.get("if-none-match"), got.tag):
        return Response(status_code=304, headers=head)
    return Response(got.body(clock.now(), encode), media_type="application/json", headers=head)


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether a request's If-None-Match names tag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))
