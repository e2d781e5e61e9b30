"""The home's side of the worker contract: one request (protocol 1: a contract verb, its
arguments, the worker, a key) checked, then run as the home's own `looop` verb against the
home data dir as that worker (LOOOP_SESSION_ID). A worker away from home reaches it over the
SSH relay (remote/ssh/relay.py) or the web API's POST /api/v1/contract (web/app.py); a
sandboxed worker at home through its box's door (core/door.py).

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
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.hot import locks, store
from looop.hot.contractverbs import RELAYED, SELF_NAMED
from looop.hot.errors import CorruptState
from looop.hot.tellbox import AskError, check_worker

STATE_DIR = ".contract"
KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MIN_KEY, MAX_KEY = 8, 64
MAX_ARGS = 256
MAX_ARGV = 64 << 10  # bytes over all arguments
MAX_STDIN = 64 << 10
MAX_OUTPUT = 1 << 20  # bytes of a run's out and err sent back (each)
KEEP_S = 86400.0
KEEP_PER_WORKER = 64
KEEP_DONE = 4096
PRUNE_EVERY = 16  # finished runs between prunes
MAX_STARTS = 3  # a run cut this often is answered with an error, not started again
POLL_S = 0.25  # waiting on a run another process started
CHECK_S = 5.0  # how often a waiting run asks whether its worker may still speak
SH = "/bin/sh"
# The run: the verb with its stdin and output in files, then its exit code written whole.
WRAP = (
    'd=$1 i=$2; shift 2; "$@" <"$i" >"$d/out" 2>"$d/err"; c=$?; '
    'printf "%s\\n" "$c" >"$d/code.tmp" && mv -f "$d/code.tmp" "$d/code"'
)
# ask and told name a worker by a bare argument; these options of ask take a value
ASK_VALUED = frozenset({"--prompt", "-p", "--ref", "--options", "--wait"})

Allowed = Callable[[str], str | None]  # worker -> why it may not speak (None: it may)


class Refusal(Exception):
    """A request the home will not run: a status (400 bad, 403 not allowed, 413 too big)
    and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())


@dataclass(frozen=True)
class Request:
    worker: str
    key: str
    argv: tuple[str, ...]
    stdin: str | None


def refused(line: str, code: int = 2) -> dict[str, Any]:
    """A refusal as an answer (the relay's shape): the worker prints it and exits `code`."""
    return {"out": "", "err": f"looop: {' '.join(line.split())}\n", "code": code}


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


def _finished(answer: dict[str, Any]) -> Run:
    run = Run()
    run.finish(answer)
    return run


class Answerer:
    """`allowed(worker)` says who may speak; `self_only` holds a worker to its own id in the
    arguments too (a worker token speaks for one worker: no `told OTHER`, no `claim
    --session OTHER`, no reading the home's spend)."""

    def __init__(
        self, ctx: Ctx, allowed: Allowed, *, self_only: bool, verbs: frozenset[str] = RELAYED
    ) -> None:
        self.ctx = ctx
        self.allowed = allowed
        self.self_only = self_only
        self.verbs = verbs
        self.root = ctx.paths.data / STATE_DIR
        self.runs: dict[tuple[str, str], Run] = {}
        self.lock = threading.Lock()
        self.finished = 0

    # -- the request ------------------------------------------------------------------------

    def check(self, raw: Any) -> Request:
        """The request, or Refusal naming what is wrong with it."""
        if not isinstance(raw, dict) or raw.get("v") != 1:
            raise Refusal(400, "the home answers contract protocol 1 (a JSON object with v: 1)")
        argv, worker, key, stdin = (raw.get(k) for k in ("argv", "worker", "key", "stdin"))
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise Refusal(400, "no verb: argv must be a non-empty list of strings")
        if len(argv) > MAX_ARGS or sum(len(store.encode(a)) for a in argv) > MAX_ARGV:
            raise Refusal(413, f"the arguments are over {MAX_ARGS} or {MAX_ARGV >> 10} KiB")
        if any("\x00" in a for a in argv):
            raise Refusal(400, "an argument holds a NUL byte")
        if argv[0] not in self.verbs:
            raise Refusal(
                400,
                f"`{_shown(argv[0])}` is not a contract verb the home answers "
                f"({', '.join(sorted(self.verbs))})",
            )
        if not isinstance(key, str) or not MIN_KEY <= len(key) <= MAX_KEY or set(key) - KEY_CHARS:
            raise Refusal(400, f"a request needs its key: {MIN_KEY}-{MAX_KEY} of [A-Za-z0-9_-]")
        if stdin is not None and (
            not isinstance(stdin, str) or len(store.encode(stdin)) > MAX_STDIN or "\x00" in stdin
        ):
            raise Refusal(413, f"stdin must be text of at most {MAX_STDIN >> 10} KiB")
        if not isinstance(worker, str):
            raise Refusal(400, "the request names no worker")
        try:
            check_worker(worker)
        except AskError as e:
            raise Refusal(400, str(e)) from None
        why = self.allowed(worker)
        if why is not None:
            raise Refusal(403, why)
        if self.self_only:
            bad = as_self(argv, worker)
            if bad is not None:
                raise Refusal(403, bad)
        return Request(worker, key, tuple(argv), stdin)

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
            got = stored(self.entry(req))
            if got is not None:
                return _finished(got)
            run = self.runs[ident] = Run()
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
        d = self.entry(req)
        d.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        while True:
            got = stored(d)
            if got is not None:
                return got
            fd = locks.try_flock(d / "lock")
            if fd is None:
                self._await_other(req, d)  # a run an earlier answerer started still goes
                continue
            try:
                got = stored(d)
                if got is not None:
                    return got
                why = self.allowed(req.worker)
                if why is not None:
                    return refused(why, 3)  # over meanwhile: nothing started, nothing stored
                meta = _meta(d)
                starts = meta.get("starts", 0) if isinstance(meta.get("starts"), int) else 0
                if starts >= MAX_STARTS:
                    return store_answer(
                        d,
                        refused(f"the home's run of `{req.argv[0]}` was cut {starts} times", 75),
                    )
                proc = self._spawn(req, d, fd, starts)
            finally:
                os.close(fd)  # the run holds the flock on: it outlives us
            self._watch(req, d, proc)

    def _spawn(self, req: Request, d: Path, fd: int, starts: int) -> subprocess.Popen[bytes]:
        p = self.ctx.paths
        store.write_json(
            d / "req.json",
            {"v": 1, "argv": list(req.argv), "starts": starts + 1, "ts": int(self.ctx.clock.now())},
        )
        infile = os.devnull
        if req.stdin is not None:
            infile = str(d / "in")
            store.atomic_write(infile, req.stdin, 0o600)
        env = {
            **self.ctx.env,
            "LOOOP_DATA_DIR": str(p.data),
            "LOOOP_CONFIG": str(p.config),
            "LOOOP_SESSION_ID": req.worker,
            "LOOOP_REQUEST_KEY": req.key,
        }
        env.pop("LOOOP_REQUEST_RETRY", None)
        env.pop("LOOOP_DOOR", None)  # the verb runs here, against the data dir itself
        if starts:
            env["LOOOP_REQUEST_RETRY"] = "1"  # cut before: the verb looks for its first run
        proc = subprocess.Popen(
            [SH, "-c", WRAP, "sh", str(d), infile, self.ctx.bin, *req.argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=str(p.data),
            pass_fds=(fd,),
            start_new_session=True,  # a Ctrl-C or restart of the answerer never cuts it
        )
        store.atomic_write(d / "pid", f"{proc.pid}\n", durable=False)
        return proc

    def _watch(self, req: Request, d: Path, proc: subprocess.Popen[bytes]) -> None:
        """Until the run ends; a worker that may no longer speak (over) has it ended."""
        while True:
            try:
                proc.wait(CHECK_S)
                return
            except subprocess.TimeoutExpired:
                pass
            why = self.allowed(req.worker)
            if why is not None:
                _end_group(proc.pid)
                proc.wait()
                if stored(d) is None:
                    store_answer(d, refused(why, 3))
                return

    def _await_other(self, req: Request, d: Path) -> None:
        """A run another process started (an answerer before a restart): wait until it
        ends, ending it when its worker may no longer speak."""
        polls = 0
        every = max(1, int(CHECK_S / POLL_S))
        while stored(d) is None and locks.flock_held(d / "lock"):
            polls += 1
            if polls % every == 0:
                why = self.allowed(req.worker)
                if why is not None:
                    pid = _pid(d)
                    if pid is not None and locks.flock_held(d / "lock"):
                        _end_group(pid)  # the group lives while the flock is held
                    if stored(d) is None:
                        store_answer(d, refused(why, 3))
                    return
            time.sleep(POLL_S)

    # -- pruning ----------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> list[str]:
        """Remove old entries (see the module's text); the `worker/key` names removed."""
        t = self.ctx.clock.now() if now is None else now
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
            shutil.rmtree(self.root / w / k, ignore_errors=True)
        for w in workers:
            try:
                os.rmdir(self.root / w)  # only when empty
            except OSError:
                pass
        return sorted(f"{w}/{k}" for w, k in drop)


def stored(d: Path) -> dict[str, Any] | None:
    """The answer on file for an entry; None while it has none."""
    try:
        raw = (store.read_text(d / "code") or "").strip()
    except OSError:
        return None
    if not raw.lstrip("-").isdecimal():
        return None
    return {"out": _text(d / "out"), "err": _text(d / "err"), "code": int(raw)}


def store_answer(d: Path, answer: dict[str, Any]) -> dict[str, Any]:
    """Put an answer the home made itself (a refusal) on file as a run's would be."""
    store.atomic_write(d / "out", str(answer.get("out", "")))
    store.atomic_write(d / "err", str(answer.get("err", "")))
    store.atomic_write(d / "code", f"{answer.get('code', 1)}\n")
    return answer


def _text(p: Path) -> str:
    try:
        with open(p, "rb") as f:
            return f.read(MAX_OUTPUT).decode("utf-8", "replace")
    except OSError:
        return ""


def _meta(d: Path) -> dict[str, Any]:
    try:
        return store.read_json_object(d / "req.json") or {}
    except CorruptState:
        return {}


def _pid(d: Path) -> int | None:
    try:
        raw = (store.read_text(d / "pid") or "").strip()
    except OSError:
        return None
    return int(raw) if raw.isdecimal() and int(raw) > 1 else None


def _mtime(d: Path) -> float:
    for p in (d / "req.json", d):
        try:
            return os.stat(p).st_mtime
        except OSError:
            continue
    return 0.0


def _end_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def _shown(text: str) -> str:
    out = "".join(c if c.isprintable() else "?" for c in text)
    return out if len(out) <= 40 else out[:37] + "..."


def as_self(argv: list[str], worker: str) -> str | None:
    """Why these arguments speak for someone other than `worker` (None: they do not)."""
    verb, rest = argv[0], argv[1:]
    if verb == "cost" and rest[:1] != ["report"]:
        return (
            "a worker reports its cost here (`cost report KIND ID RUNNER USD`); the home's "
            "spend is for the human to read"
        )
    if verb in ("ask", "told"):
        for name in _bare(rest, ASK_VALUED if verb == "ask" else frozenset()):
            if name != worker:
                return f"worker {worker} may {verb} only as itself, not as {_shown(name)!r}"
    if verb in SELF_NAMED:
        named = _bare(rest, frozenset())[:1]
        if named != [worker]:
            who = _shown(named[0]) if named else "no one"
            return f"worker {worker} may {verb} only itself, not {who!r}"
    if verb in ("claim", "unclaim"):
        for i, a in enumerate(rest):
            held = None
            if a == "--session":
                held = rest[i + 1] if i + 1 < len(rest) else ""
            elif a.startswith("--session="):
                held = a.partition("=")[2]
            if held is not None and held != worker:
                return f"worker {worker} may {verb} only for itself, not for {_shown(held)!r}"
    return None


def _bare(args: list[str], valued: frozenset[str]) -> list[str]:
    """The bare (non-option) arguments, as click would read them."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
        elif a == "--":
            return out + args[i + 1 :]
        elif a in valued:
            skip = True
        elif not a.startswith("-") or a == "-":
            out.append(a)
    return out
