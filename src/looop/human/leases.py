"""Leases (claims): an atomic, liveness-aware test-and-set on claims/<name>.json.

Writers are serialised by locks.folder_lock (the data dir's .lock/claims, and claims/.lock for
a box's own `looop claim`, waited for a bounded time), so test-and-set, idempotent re-claims
and reaping never race; a holder is live while its session is alive (the supervisor's flock).
claims/ is a folder a box can write: read through boxfolder (no symlink followed, bounded)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import locks, store, where
from looop.home.boxfolder import Folder
from looop.home.errors import CorruptState, LooopError
from looop.home.sessionfiles import live

if TYPE_CHECKING:
    from collections.abc import Callable
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
