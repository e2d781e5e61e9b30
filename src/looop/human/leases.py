"""Leases (claims): an atomic, liveness-aware test-and-set on claims/<name>.json.

Writers are serialised by locks.folder_lock (the data dir's .lock/claims, and claims/.lock for
a box's own `looop claim`, waited for a bounded time), so test-and-set, idempotent re-claims
and reaping never race; a holder is live while its session is alive (the supervisor's flock).
claims/ is a folder a box can write: read through boxfolder (no symlink followed, bounded).
`looop claim NAME [--session S]` / `looop unclaim …` run here too (hot path: no click), and
`looop tell WORKER MSG…`, whose live-worker check is this module's liveness."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from looop.home import locks, store, where
from looop.home.boxfolder import Folder
from looop.home.errors import CorruptState, LooopError
from looop.home.eventlog import append_record
from looop.home.knobs import env_knob
from looop.home.plain import echo
from looop.home.reqkey import request_key
from looop.home.sessionfiles import live
from looop.human.tellbox import AskError, check_worker, keyed_tell, new_tell

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from looop.home.store import AnyPath

    Alive = Callable[[str], bool]


class LeaseError(LooopError):
    pass


def check_name(name: str) -> str:
    ok = bool(name) and len(name) <= 64 and not name.startswith(".") and ".." not in name
    if not ok or any(not (c.isalnum() or c in "._-") for c in name):
        raise LeaseError(
            f"invalid claim name {name!r}: use 1-64 letters, digits, '.', '_' or "
            "'-', not starting with '.'"
        )
    return name


def session_alive(data: AnyPath) -> Alive:
    """Liveness of a holder session; unknown (unreadable) counts as alive: never steal blind."""
    root = os.fspath(data)

    def alive(sid: str) -> bool:
        try:
            if live(root, sid):
                return True
        except OSError:
            return True
        return remote_alive(root, sid)

    return alive


def remote_alive(root: str, sid: str) -> bool:
    """A worker the home started on an SSH host holds its leases until the host says it is
    over (hosts/workers/<id>.json): a host out of reach is not a dead holder. One stat when
    there is no such worker."""
    path = os.path.join(root, where.HOSTS, where.HOST_WORKERS, f"{sid}.json")
    if not os.path.exists(path):
        return False
    try:
        rec = store.read_json_object(path)
    except CorruptState:
        return True  # unknown counts as alive: never steal blind
    return rec is not None and not rec.get("over")


def _holder(claims: Folder, name: str) -> str | None:
    """The holder's session id; None when the record is unreadable (reclaimable)."""
    try:
        rec = claims.read_object(name)
    except CorruptState:
        return None
    if rec is None:
        return None
    s = rec.get("session")
    return s if isinstance(s, str) else None


def lease_lock(claims: AnyPath) -> locks.folder_lock:
    """The claims' lock: private in the data dir's .lock/, and claims/.lock for the boxes."""
    root = os.path.dirname(os.path.abspath(claims))
    return locks.folder_lock(
        os.path.join(root, where.LOCKS, where.CLAIMS), os.path.join(claims, where.LOCKS)
    )


def _opened(claims: AnyPath) -> Folder:
    """claims/ opened for a lease; a symlink (or a file) in its place is refused, said."""
    d = Folder(claims)
    if d.refused is not None:
        raise LeaseError(f"{d.refused} — remove it and claim again")
    return d


def claim(claims: AnyPath, name: str, session: str, alive: Alive, now: float) -> tuple[bool, str]:
    """(acquired, holder). Idempotent for the owner; a dead or unknown holder is replaced."""
    check_name(name)
    file = f"{name}.json"
    with _opened(claims) as d, lease_lock(claims):
        if d.has(file):
            holder = _holder(d, file)
            if holder and holder == session:
                return True, holder
            if holder and alive(holder):
                return False, holder
        rec: dict[str, Any] = {
            "v": 1,
            "name": name,
            "session": session,
            "ts": int(now),
            "nonce": os.urandom(4).hex(),
        }
        store.write_json(os.path.join(claims, file), rec)
        return True, session


def unclaim(claims: AnyPath, name: str, session: str, alive: Alive) -> bool:
    """Release; False when another live session holds it (nothing changed)."""
    check_name(name)
    file = f"{name}.json"
    with _opened(claims) as d, lease_lock(claims):
        if not d.has(file):
            return True
        holder = _holder(d, file)
        if holder and holder != session and alive(holder):
            return False
        d.unlink(file)
        return True


def reap_stale(claims: AnyPath, alive: Alive) -> list[tuple[str, str]]:
    """Remove leases whose holder is gone, re-checking each under the lock (a worker that
    claims during the sweep keeps its fresh lease). Returns (claim file, holder) pairs; at most
    boxfolder.FOLDER_MAX entries are looked at a beat. A claims/ that is a symlink raises
    LeaseError (said, never followed)."""
    if not os.path.lexists(claims):
        return []
    gone: list[tuple[str, str]] = []
    with _opened(claims) as d, lease_lock(claims):
        for file in d.names(".json"):
            holder = _holder(d, file)
            if holder and alive(holder):
                continue
            d.unlink(file)
            gone.append((file, holder or ""))
    return gone


def run_lease(verb: str, name: str, session: str | None, env: Mapping[str, str], now: float) -> int:
    """The work of claim/unclaim for both faces (the fast path and click's); the exit code."""
    data = where.resolve(env, os.getcwd())[0]
    holder = session if session is not None else env.get("LOOOP_SESSION_ID", "")
    if verb == "claim" and not holder:
        # a lease no session holds could never be released by its holder's end: refused
        given = "--session is empty" if session is not None else "LOOOP_SESSION_ID is not set"
        sys.stderr.write(
            f"looop: claim {name}: {given} — a claim needs a holder: run it inside a worker "
            "or give --session ID\n"
        )
        return 1
    if holder:
        try:
            check_worker(holder, "--session" if session is not None else "LOOOP_SESSION_ID")
        except AskError as e:
            sys.stderr.write(f"looop: {e}\n")
            return 1
    alive = session_alive(data)
    claims = os.path.join(data, where.CLAIMS)
    os.makedirs(claims, exist_ok=True)
    if verb == "claim":
        ok, who = claim(claims, name, holder, alive, now)
        if ok:
            sys.stdout.write(f"claimed {name}\n")
            return 0
        sys.stderr.write(
            f"claim {name}: held by live session '{who}' — do not proceed; pick other work or ask\n"
        )
        return 1
    if unclaim(claims, name, holder, alive):
        return 0
    sys.stderr.write(f"unclaim {name}: held by another live session — leave it to them\n")
    return 1


def parse_fast(argv: list[str]) -> tuple[str, str, str | None] | None:
    """(verb, name, session) for the plain spellings; anything else goes through click."""
    if not argv or argv[0] not in ("claim", "unclaim"):
        return None
    rest = argv[1:]
    session = None
    if len(rest) == 3 and rest[1] == "--session":
        rest, session = [rest[0]], rest[2]
    elif len(rest) == 3 and rest[0] == "--session":
        rest, session = [rest[2]], rest[1]
    if len(rest) != 1 or rest[0].startswith("-"):
        return None
    return argv[0], rest[0], session


def run_tell(worker: str, message: list[str], env: Mapping[str, str], now: float) -> None:
    """`looop tell WORKER MSG...` for both faces: the message queued for a live worker, said
    once even when the run that asked is cut and run again (its request key)."""
    data = where.resolve(env, os.getcwd())[0]
    tells = os.path.join(data, where.TELLS)
    key, again = request_key(env)
    earlier = keyed_tell(tells, worker, key) if key is not None and again else None
    if earlier is not None:
        echo(f"queued {earlier}")  # the cut run queued it: said again, sent once
        return
    if not live(data, worker) and not remote_alive(data, worker):
        raise LooopError(f"worker {worker} is not running — a tell only reaches a live worker")
    tid = new_tell(tells, worker, " ".join(message), now, key)
    events, most = os.path.join(data, where.EVENTS), env_knob("events_max_bytes", env)
    append_record(events, "tell", {"id": tid, "worker": worker}, now, most)
    echo(f"queued {tid}")


def parse_tell(argv: list[str]) -> tuple[str, list[str]] | None:
    """(worker, words) for `tell WORKER MSG...` with no option-like word; else None."""
    rest = argv[1:]
    if len(rest) < 2 or any(a.startswith("-") for a in rest):
        return None
    return rest[0], rest[1:]


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """The plain spellings, run: claim/unclaim end with run_lease's exit code; False: click's."""
    if argv[:1] == ["tell"]:
        tell = parse_tell(argv)
        if tell is not None:
            run_tell(*tell, env, now)
        return tell is not None
    parsed = parse_fast(argv)
    if parsed is None:
        return False
    raise SystemExit(run_lease(*parsed, env, now))
