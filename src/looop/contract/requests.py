"""The home's side of the worker contract: one request (protocol 1: a contract verb, its
arguments, the worker, a key) checked, then answered as that worker (LOOOP_SESSION_ID): a
plain verb in this process (contract/answering.py), the rest as a run of the home's own `looop`
against the home data dir. A worker away from home reaches it over the
SSH relay (remote/ssh/relay.py) or the web API's POST /api/v1/contract (web/app.py); a
sandboxed worker at home through its box's door (sandbox/door.py).

Once-only by key, across restarts of the answering process. Each request has an entry under
`<data>/.contract/<worker>/<key>/`: `req.json` (what and how often started), `in`, and the
run's `out`, `err` and `code`. The run is a small `sh` in a session of its own, holding the
entry's flock while it lives and writing `code` (atomically) when the verb is done, so:

- a retry of a request that ran gets the stored answer (`code` is there);
- a retry while the run still goes (its answerer restarted meanwhile: the run outlived it)
  waits on that same run (the flock is held) — an `ask` keeps waiting on the same question;
- a run cut before `code` (the machine went down) is run again with LOOOP_REQUEST_RETRY=1;
  the verbs make that harmless by the key they are given in LOOOP_REQUEST_KEY: an ask finds
  its own earlier ask, a cost report or a tell already on file is not added twice, a claim
  or unclaim repeated by the same holder is the same.

Entries are pruned: done ones past KEEP_S or beyond the newest KEEP_PER_WORKER of their
worker (a worker makes one request at a time, so only its own later requests, made after it
read an answer, push one out), and a global KEEP_DONE cap."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from looop.contract.answering import (
    STATE_DIR,
    Refusal,
    Request,
    answer_here,
    check,
    end_entry_run,
    ended,
    held,
    refused,
    spawn_run,
    store_answer,
    stored,
)
from looop.contract.verbs import RELAYED
from looop.core.procstat import kill_group
from looop.home import locks
from looop.home.sessionfiles import remove_tree

if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.core.context import Ctx
    from looop.home.clock import Clock
    from looop.home.paths import Paths

KEEP_S = 86400.0
KEEP_PER_WORKER = 64
KEEP_DONE = 4096
PRUNE_EVERY = 16  # finished runs between prunes
POLL_S = 0.25  # waiting on a run
CHECK_S = 5.0  # how often a waiting run asks whether its worker may still speak

Allowed = Callable[[str], str | None]  # worker -> why it may not speak (None: it may)


class Run:
    """One request being answered in this process: done once its answer is known."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._subs: list[Callable[[], None]] = []

    def finish(self, answer: dict[str, Any]) -> None:
        with self._lock:
            self.answer = answer
            self.done.set()
            subs, self._subs = self._subs, []
        for fn in subs:
            fn()

    def subscribe(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call `fn` once done (now, when it is); returns what stops that."""
        with self._lock:
            if not self.done.is_set():
                self._subs.append(fn)
                return lambda: self._drop(fn)
        fn()
        return lambda: None

    def _drop(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if fn in self._subs:
                self._subs.remove(fn)


class Home(NamedTuple):
    """What answering reads of a home: no Ctx, whose config and runners the network filter,
    which holds the boxes' door, has no use for (sandbox/door.py)."""

    paths: Paths
    env: Mapping[str, str]
    clock: Clock
    bin: str

    @classmethod
    def of(cls, ctx: Ctx) -> Home:
        return cls(ctx.paths, ctx.env, ctx.clock, ctx.bin)


class Answerer:
    """`allowed(worker)` says who may speak; `self_only` holds a worker to its own id in the
    arguments too (a worker token speaks for one worker: no `told OTHER`, no `claim
    --session OTHER`, no reading the home's spend)."""

    def __init__(
        self, home: Home, allowed: Allowed, *, self_only: bool, verbs: frozenset[str] = RELAYED
    ) -> None:
        self.home = home
        self.allowed = allowed
        self.self_only = self_only
        self.verbs = verbs
        self.root = home.paths.data / STATE_DIR
        self.runs: dict[tuple[str, str], Run] = {}
        self.lock = threading.Lock()
        self.finished = 0

    # -- the request ------------------------------------------------------------------------

    def check(self, raw: Any) -> Request:
        """The request, or Refusal naming what is wrong with it."""
        return check(raw, self.verbs, self.allowed, self.self_only)

    # -- answering --------------------------------------------------------------------------

    def entry(self, req: Request) -> Path:
        return self.root / req.worker / req.key

    def start(self, req: Request) -> Run:
        """The request's run: finished when its answer is on file, else the one in flight
        (started now, or joined: in this process, or one an earlier answerer started)."""
        ident = (req.worker, req.key)
        with self.lock:
            run = self.runs.get(ident)
            if run is not None:
                return run
            got, run = stored(self.entry(req)), Run()
            if got is not None:
                run.finish(got)
                return run
            self.runs[ident] = run
        threading.Thread(target=self._drive, args=(req, run), daemon=True).start()
        return run

    def run(self, raw: Any) -> dict[str, Any]:
        """Check, run (or join) and wait: the answer, or a refusal in the same shape."""
        try:
            req = self.check(raw)
        except Refusal as e:
            return refused(e.message)
        run = self.start(req)
        run.done.wait()
        return run.answer

    def _drive(self, req: Request, run: Run) -> None:
        try:
            answer = self._settle(req)
        except Exception as e:  # a full disk, a vanished data dir: said, not stored
            answer = refused(f"the home could not run `{req.argv[0]}`: {e}")
        with self.lock:
            self.runs.pop((req.worker, req.key), None)
            self.finished += 1
            prune = self.finished % PRUNE_EVERY == 1
        run.finish(answer)
        if prune:
            self.prune()

    def _settle(self, req: Request) -> dict[str, Any]:
        p = self.home.paths
        env = {**self.home.env, "LOOOP_CONFIG": str(p.config)}
        here = answer_here(req, str(p.data), env, self.home.clock.now())
        if isinstance(here, dict):
            return here  # a plain verb, answered in this process (contract/answering.py)
        d, home = self.entry(req), (str(p.data), env, (self.home.bin,))
        while True:
            got, fd, starts = held(str(d), req)
            if got is not None:
                return got
            if fd is None:
                self._watch(req, d, None)  # a run an earlier answerer started still goes
                continue
            try:
                why = self.allowed(req.worker)
                if why is not None:
                    return refused(why, 3)  # over meanwhile: nothing started, nothing stored
                pid = spawn_run(req, str(d), fd, starts, home, self.home.clock.now())
            finally:
                os.close(fd)  # the run holds the flock on: it outlives us
            self._watch(req, d, pid)

    def _watch(self, req: Request, d: Path, pid: int | None) -> None:
        """Until the run ends (ours: `pid`; None: one another process started, while it holds
        the entry's flock); a worker that may no longer speak (over) has it ended."""
        polls = 0
        every = max(1, int(CHECK_S / POLL_S))
        lock = d / "lock"
        while not ended(pid) if pid else stored(d) is None and locks.flock_held(lock):
            time.sleep(POLL_S)
            polls += 1
            why = None if polls % every else self.allowed(req.worker)
            if why is None:
                continue
            if pid:
                kill_group(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            else:
                end_entry_run(str(d))  # the group lives while the flock is held
            if stored(d) is None:
                store_answer(d, refused(why, 3))
            return

    # -- pruning ----------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> list[str]:
        """Remove old entries (see the module's text); the `worker/key` names removed."""
        t = self.home.clock.now() if now is None else now
        try:
            workers = sorted(os.listdir(self.root))
        except OSError:
            return []
        with self.lock:
            busy = set(self.runs)
        done: list[tuple[float, str, str]] = []
        drop: list[tuple[str, str]] = []
        for w in workers:
            try:
                keys = os.listdir(self.root / w)
            except OSError:
                continue
            mine: list[tuple[float, str, str]] = []
            for k in keys:
                d = self.root / w / k
                try:
                    mine.append((os.stat(d / "code").st_mtime, w, k))
                    continue
                except OSError:
                    pass
                if (w, k) in busy or t - _mtime(d) <= KEEP_S or locks.flock_held(d / "lock"):
                    continue
                drop.append((w, k))  # never finished, nobody at it for a day: given up
            mine.sort(reverse=True)
            drop += [(w, k) for i, (m, w, k) in enumerate(mine) if i >= KEEP_PER_WORKER]
            done += [row for i, row in enumerate(mine) if i < KEEP_PER_WORKER]
        done.sort(reverse=True)
        drop += [(w, k) for i, (m, w, k) in enumerate(done) if i >= KEEP_DONE or t - m > KEEP_S]
        for w, k in drop:
            remove_tree(os.fspath(self.root / w / k))
        for w in workers:
            try:
                os.rmdir(self.root / w)  # only when empty
            except OSError:
                pass
        return sorted(f"{w}/{k}" for w, k in drop)


def _mtime(d: Path) -> float:
    for p in (d / "req.json", d):
        try:
            return os.stat(p).st_mtime
        except OSError:
            continue
    return 0.0
