"""The contract's request checked, and its plain verbs answered by the home itself, in the
process at the door: the session host's door for a local worker (sessions/hostdoor.py), the
network filter's for a sandboxed one (sandbox/door.py). One check and one way of answering for
every door; a verb this module does not answer (an `ask` waiting on a human, a `kill`, an odd
spelling) is a run of the home's own `looop` (contract/requests.py's entries, the same ones).

Once-only by key, as contract/requests.py says: the entry `<data>/.contract/<worker>/<key>/`
holds the answer (`out`, `err`, `code`); its flock is held while the verb runs, `req.json`
counts the starts, and a verb cut before its `code` runs again told so (LOOOP_REQUEST_RETRY),
which the verbs make harmless by the key.

Light on purpose: the session host loads it (its pages are every supervisor's), so only the
hot room's modules (no subprocess, threading or json)."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

from looop.contract.verbs import SELF_NAMED
from looop.home import locks, store
from looop.home.errors import CorruptState, LooopError
from looop.home.plain import echo
from looop.home.sessionfiles import flag_note
from looop.human.leases import parse_fast as parse_lease
from looop.human.leases import parse_tell, run_lease, run_tell
from looop.human.tellbox import AskError, check_worker, parse_told, run_told
from looop.spend.record import parse_fast as parse_cost
from looop.spend.record import run_fast as run_cost

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Allowed = Callable[[str], str | None]

STATE_DIR = ".contract"
KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MIN_KEY, MAX_KEY = 8, 64
MAX_ARGS = 256
MAX_ARGV = 64 << 10  # bytes over all arguments
MAX_STDIN = 64 << 10
MAX_OUTPUT = 1 << 20  # bytes of a run's out and err sent back (each)
MAX_STARTS = 3  # a run cut this often is answered with an error, not started again
SH = "/bin/sh"
# The run: in the data dir, the verb with its stdin and output in files, then its exit code
# in one write of the shell's own (no `mv` to start: the door answers once the run has
# ended); a reader before it sees an empty `code`, which is no answer (`stored`).
WRAP = (
    'w=$1 d=$2 i=$3; shift 3; cd "$w" || exit 1; "$@" <"$i" >"$d/out" 2>"$d/err"; '
    'printf "%s\\n" "$?" >"$d/code"'
)
# ask and told name a worker by a bare argument; these options of ask take a value
ASK_VALUED = frozenset({"--prompt", "-p", "--ref", "--options", "--wait"})


class Refusal(Exception):
    """A request the home will not run: a status (400 bad, 403 not allowed, 413 too big)
    and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())


class Request(NamedTuple):
    worker: str
    key: str
    argv: tuple[str, ...]
    stdin: str | None


def refused(line: str, code: int = 2) -> dict[str, Any]:
    """A refusal as an answer (the relay's shape): the worker prints it and exits `code`."""
    return {"out": "", "err": f"looop: {' '.join(line.split())}\n", "code": code}


def check(raw: Any, verbs: frozenset[str], allowed: Allowed, self_only: bool) -> Request:
    """The request, or Refusal naming what is wrong with it. `allowed(worker)` says who may
    speak; `self_only` holds a worker to its own id in the arguments too."""
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise Refusal(400, "the home answers contract protocol 1 (a JSON object with v: 1)")
    argv, worker, key, stdin = (raw.get(k) for k in ("argv", "worker", "key", "stdin"))
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise Refusal(400, "no verb: argv must be a non-empty list of strings")
    if len(argv) > MAX_ARGS or sum(len(store.encode(a)) for a in argv) > MAX_ARGV:
        raise Refusal(413, f"the arguments are over {MAX_ARGS} or {MAX_ARGV >> 10} KiB")
    if any("\x00" in a for a in argv):
        raise Refusal(400, "an argument holds a NUL byte")
    if argv[0] not in verbs:
        raise Refusal(
            400,
            f"`{shown(argv[0])}` is not a contract verb the home answers "
            f"({', '.join(sorted(verbs))})",
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
    why = allowed(worker)
    if why is not None:
        raise Refusal(403, why)
    if self_only:
        bad = as_self(argv, worker)
        if bad is not None:
            raise Refusal(403, bad)
    return Request(worker, key, tuple(argv), stdin)


def as_self(argv: list[str], worker: str) -> str | None:
    """Why these arguments speak for someone other than `worker` (None: they do not)."""
    verb, rest = argv[0], argv[1:]
    if verb == "cost" and rest[:1] != ["report"]:
        return (
            "a worker reports its cost here (`cost report KIND ID RUNNER USD`); the home's "
            "spend is for the human to read"
        )
    if verb == "cost":  # its budget counts its own reports: another's would pause that one
        named = bare(rest[1:], frozenset())[1:2]
        if named and named != [worker]:
            return f"worker {worker} may report only its own cost, not {shown(named[0])!r}'s"
    if verb in ("ask", "told"):
        for name in bare(rest, ASK_VALUED if verb == "ask" else frozenset()):
            if name != worker:
                return f"worker {worker} may {verb} only as itself, not as {shown(name)!r}"
    if verb in SELF_NAMED:
        named = bare(rest, frozenset())[:1]
        if named != [worker]:
            who = shown(named[0]) if named else "no one"
            return f"worker {worker} may {verb} only itself, not {who!r}"
    if verb in ("claim", "unclaim"):
        for i, a in enumerate(rest):
            held = None
            if a == "--session":
                held = rest[i + 1] if i + 1 < len(rest) else ""
            elif a.startswith("--session="):
                held = a.partition("=")[2]
            if held is not None and held != worker:
                return f"worker {worker} may {verb} only for itself, not for {shown(held)!r}"
    return None


def bare(args: list[str], valued: frozenset[str]) -> list[str]:
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


def shown(text: str) -> str:
    out = "".join(c if c.isprintable() else "?" for c in text)
    return out if len(out) <= 40 else out[:37] + "..."


# what a worker's environment holds that the home's does not
WORKER_ONLY = frozenset({"LOOOP_DOOR", "LOOOP_SESSION_ID", "LOOOP_HOME_CONFIG", "LOOOP_WORKSPACE"})


def home_env(env: Mapping[str, str]) -> dict[str, str]:
    """The home's own environment from whichever process started the door's: a box's
    launcher passes its worker's, whose config is the knobs-only copy (LOOOP_HOME_CONFIG
    names the real one) and whose verbs would knock on the door again."""
    home = {k: v for k, v in env.items() if k not in WORKER_ONLY}
    if env.get("LOOOP_HOME_CONFIG"):
        home["LOOOP_CONFIG"] = env["LOOOP_HOME_CONFIG"]
    return home


# -- the entries --------------------------------------------------------------------------


def entry(data: str, req: Request) -> str:
    return os.path.join(data, STATE_DIR, req.worker, req.key)


def stored(d: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The answer on file for an entry; None while it has none."""
    try:
        raw = (store.read_text(os.path.join(d, "code")) or "").strip()
    except OSError:
        return None
    if not raw.lstrip("-").isdecimal():
        return None
    return {"out": _text(d, "out"), "err": _text(d, "err"), "code": int(raw)}


def store_answer(d: str | os.PathLike[str], answer: dict[str, Any]) -> dict[str, Any]:
    """Put an answer the home made itself on file as a run's would be (`code` last). Not
    synced, as a run's are not: after a machine's crash the verb runs again told so."""
    try:
        store.atomic_write(os.path.join(d, "out"), str(answer.get("out", "")), durable=False)
        store.atomic_write(os.path.join(d, "err"), str(answer.get("err", "")), durable=False)
        store.atomic_write(os.path.join(d, "code"), f"{answer.get('code', 1)}\n", durable=False)
    except OSError:
        pass  # a full or read-only disk: the answer is still given (no `code`: not on file)
    return answer


def starts_of(d: str) -> int:
    """How often the entry's verb was started (req.json); 0 when never or unreadable."""
    try:
        meta = store.read_json_object(os.path.join(d, "req.json")) or {}
    except (OSError, CorruptState):
        return 0
    starts = meta.get("starts")
    return starts if isinstance(starts, int) else 0


# the verbs a second run would do twice unless told it is one (by the key): their start is
# synced before they run, so a machine's crash mid-verb still tells the next run
KEYED = frozenset({"tell", "cost", "ask", "kill"})


def note_start(d: str, req: Request, starts: int, now: float) -> None:
    meta = {"v": 1, "argv": list(req.argv), "starts": starts + 1, "ts": int(now)}
    store.write_json(os.path.join(d, "req.json"), meta, durable=req.argv[0] in KEYED)


def opened(data: str, req: Request) -> str:
    """The request's entry, its folders made private."""
    d = entry(data, req)
    root = os.path.join(data, STATE_DIR)
    os.makedirs(os.path.dirname(d), mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _text(d: str | os.PathLike[str], name: str) -> str:
    try:
        with open(os.path.join(d, name), "rb") as f:
            return f.read(MAX_OUTPUT).decode("utf-8", "replace")
    except OSError:
        return ""


# -- answered here ------------------------------------------------------------------------

BUSY = "busy"  # another run of the same request holds its entry: wait for its answer


def answer_here(
    req: Request, data: str, env: Mapping[str, str], now: float
) -> dict[str, Any] | str | None:
    """The request answered in this process, once by key: its answer (the stored one when
    it ran before), BUSY while another run holds its entry, or None when this module does not
    answer its verb (run it as the home's `looop`, contract/requests.py)."""
    verb = _plain(list(req.argv))
    if verb is None:
        return None
    d = opened(data, req)
    got, fd, starts = held(d, req)
    if fd is None:
        return BUSY if got is None else got
    try:
        note_start(d, req, starts, now)
        asked = verb_env(env, data, req, starts)
        return store_answer(d, captured(lambda: verb(asked, now)))
    finally:
        os.close(fd)


def held(d: str, req: Request) -> tuple[dict[str, Any] | None, int | None, int]:
    """(the entry's answer on file, its flock's fd, how often its verb started): the answer
    when it has one (a run cut MAX_STARTS times: its refusal, stored), else the flock taken
    to start it, or (None, None, 0) while another run holds it."""
    got = stored(d)
    fd = locks.try_flock(os.path.join(d, "lock")) if got is None else None
    if fd is None:
        return got, None, 0
    got, starts = stored(d), starts_of(d)
    if got is None and starts >= MAX_STARTS:
        cut = refused(f"the home's run of `{req.argv[0]}` was cut {starts} times", 75)
        got = store_answer(d, cut)
    if got is not None:
        os.close(fd)
        return got, None, 0
    return None, fd, starts


def verb_env(env: Mapping[str, str], data: str, req: Request, starts: int) -> dict[str, str]:
    """The environment a verb of `req` runs with: the home's, as that worker, by its key."""
    out = {k: v for k, v in env.items() if k not in ("LOOOP_DOOR", "LOOOP_REQUEST_RETRY")}
    out.update(LOOOP_DATA_DIR=data, LOOOP_SESSION_ID=req.worker, LOOOP_REQUEST_KEY=req.key)
    if starts:
        out["LOOOP_REQUEST_RETRY"] = "1"  # cut before: the verb looks for its first run
    return out


def _plain(argv: list[str]) -> Callable[[dict[str, str], float], int | None] | None:
    """The function answering this spelling here (given the verb's env and time); None for
    the rest."""
    verb = argv[0]
    if verb in ("claim", "unclaim") and (lease := parse_lease(argv)) is not None:
        return lambda env, now: run_lease(*lease, env, now)
    if verb == "told" and (told := parse_told(argv)) is not None:
        return lambda env, now: run_told(*told, env)
    if verb == "tell" and (tell := parse_tell(argv)) is not None:
        return lambda env, now: run_tell(*tell, env, now)
    if verb == "cost" and argv[1:2] == ["report"] and (cost := parse_cost(argv)) is not None:
        return lambda env, now: run_cost(cost, env, now)
    if verb in ("flag", "unflag") and bare(argv[1:], frozenset()) == argv[1:] and len(argv) > 1:
        return lambda env, now: _flag(argv, env)
    return None


def _flag(argv: list[str], env: dict[str, str]) -> int:
    """`flag ID MSG…` / `unflag ID` (ID is the worker itself: as_self), said as the click
    verb says it."""
    sid = argv[1]
    check_worker(sid)
    text = None if argv[0] == "unflag" else " ".join(argv[2:]) or "needs attention"
    echo(flag_note(env["LOOOP_DATA_DIR"], sid, text))
    return 0


# -- run as the home's `looop` ------------------------------------------------------------


def spawn_run(
    req: Request,
    d: str,
    fd: int,
    starts: int,
    home: tuple[str, Mapping[str, str], tuple[str, ...]],
    now: float,
) -> int:
    """Start the request's verb as the home's own `looop` (`home`: the data dir, the home's
    environment, the argv of its `looop`), in a session of its own (a restart of the answerer
    never cuts it), holding the entry's flock `fd` while it lives; its pid."""
    data, env, looop = home
    note_start(d, req, starts, now)
    infile = os.devnull
    if req.stdin is not None:
        infile = os.path.join(d, "in")
        store.atomic_write(infile, req.stdin, 0o600)
    null = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
    outs = [(os.POSIX_SPAWN_OPEN, n, os.devnull, os.O_WRONLY, 0) for n in (1, 2)]
    # dup2 onto itself clears close-on-exec in the child only: no other thread's child gets it
    held = (os.POSIX_SPAWN_DUP2, fd, fd)
    argv = [SH, "-c", WRAP, "sh", data, d, infile, *looop, *req.argv]
    acts = [null, *outs, held, *_closed(fd)]
    pid = os.posix_spawn(SH, argv, verb_env(env, data, req, starts), file_actions=acts, setsid=True)
    store.atomic_write(os.path.join(d, "pid"), f"{pid}\n", durable=False)
    return pid


def _closed(keep: int) -> list[tuple[int, int]]:
    """Close every descriptor of ours but `keep` in the run: one another part of this
    process made inheritable (a web server's listener) must not outlive it in an `ask`."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd") if n.isdigit()]
    except OSError:
        return []
    return [(os.POSIX_SPAWN_CLOSE, n) for n in fds if n > 2 and n != keep]


def end_entry_run(d: str) -> bool:
    """End the run of entry `d` that any answerer started (its `pid`), while it still holds
    the entry's flock and its argv names the entry (a reused pid is left alone). Whether one
    was signalled."""
    raw = (_text(d, "pid") or "").strip()
    if not raw.isdecimal() or int(raw) <= 1 or not locks.flock_held(os.path.join(d, "lock")):
        return False
    try:
        with open(f"/proc/{raw}/cmdline", "rb") as f:
            if d.encode() not in f.read().split(b"\0"):
                return False
        os.killpg(int(raw), 15)  # its own session: the sh, the verb and theirs
    except OSError:
        return False
    return True


def ended(pid: int) -> bool:
    """Whether our run `pid` has ended (reaped now)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


# -- a verb's output, caught per thread ---------------------------------------------------


class _Caught:
    """A process's stdout or stderr that a thread answering a verb writes into a buffer of
    its own: the verbs print (as their CLI faces do), and a door answers many at once."""

    def __init__(self, real: Any, which: int) -> None:
        self.real, self.which = real, which

    def _buf(self) -> list[str] | None:
        mine = _MINE.get()
        return None if mine is None else mine[self.which]

    def write(self, text: str) -> int:
        buf = self._buf()
        if buf is None:
            return int(self.real.write(text))
        buf.append(text)
        return len(text)

    def flush(self) -> None:
        if self._buf() is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False if self._buf() is not None else bool(self.real.isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# Each thread's (out, err): a thread starts with a context of its own (no `threading` in the
# session host, whose forks would each pay for its after-fork hook).
_MINE: ContextVar[tuple[list[str], list[str]] | None] = ContextVar("caught", default=None)


def captured(run: Callable[[], int | None]) -> dict[str, Any]:
    """`run`'s answer {out, err, code}, with what it printed; a user's error is its one line
    and exit 1, as the CLI says it."""
    if not isinstance(sys.stdout, _Caught):  # two threads may both wrap: it still writes once
        sys.stdout = _Caught(sys.stdout, 0)
    if not isinstance(sys.stderr, _Caught):
        sys.stderr = _Caught(sys.stderr, 1)
    out: list[str] = []
    err: list[str] = []
    _MINE.set((out, err))
    try:
        code = run() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except (LooopError, OSError) as e:
        err.append(f"looop: {' '.join(str(e).split())}\n")
        code = 1
    finally:
        _MINE.set(None)
    return {"out": "".join(out), "err": "".join(err), "code": code}
