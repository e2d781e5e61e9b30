"""Worker ids and tells: the part of the mailbox the hot verbs use (`told`, `tell`, and
`claim`'s holder check), without `re` or pathlib. human/mailbox.py re-exports every name."""

from __future__ import annotations

import os

from looop.hot import store
from looop.hot.errors import CorruptState, LooopError

TYPE_CHECKING = False  # workers call `looop told` often: no typing

if TYPE_CHECKING:
    from looop.hot.store import AnyPath

_ASCII_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_WORKER_FIRST = frozenset(_ASCII_ALNUM + "_")
_WORKER_REST = frozenset(_ASCII_ALNUM + "._-")


class AskError(LooopError):
    pass


def check_worker(worker: str, source: str = "worker id") -> str:
    """A worker id names files (asks/<id>-<n>.json) and glob patterns: no paths, no wildcards.

    It often comes from the environment (LOOOP_SESSION_ID), so the message names the source."""
    ok = 0 < len(worker) <= 64 and worker[0] in _WORKER_FIRST and _WORKER_REST.issuperset(worker)
    if not ok or ".." in worker:
        shown = worker.encode("utf-8", "backslashreplace").decode()[:40]
        raise AskError(
            f"invalid {source} '{shown}': use 1-64 letters, digits, '.', '_' or '-', not "
            "starting with '.' (a worker's own id is set by looop in LOOOP_SESSION_ID)"
        )
    return worker


def id_number(name: str, worker: str) -> int:
    """n of a `<worker>-<n>` id (a file's stem); 0 when it is not one of this worker's."""
    if name.endswith("\n"):
        name = name[:-1]  # as a regex's `$` would, a final newline is not part of the id
    head, dash, n = name.rpartition("-")
    return int(n) if dash and n.isdecimal() and head == worker else 0


def _stems(d: AnyPath, worker: str) -> list[str]:
    """Stems of d's `<worker>-*.json` entries (as Path.glob lists them; none when d is no dir)."""
    if not os.path.isdir(d):
        return []
    try:
        names = os.listdir(d)
    except PermissionError:
        return []
    pre = f"{worker}-"
    return [
        n[:-5]
        for n in names
        if n.startswith(pre) and n.endswith(".json") and len(n) >= len(pre) + 5
    ]


def new_tell(tells: AnyPath, worker: str, msg: str, now: float, key: str | None = None) -> str:
    """Queue steering for a worker (the caller checks it is live); returns the tell id.
    `key`: the home's request key of a worker away from home (keyed_tell finds it again)."""
    check_worker(worker)
    if not msg.strip():
        raise AskError("a tell needs a message")
    os.makedirs(tells, exist_ok=True)
    for _ in range(50):
        seen = [*_stems(tells, worker), *_stems(os.path.join(tells, "consumed"), worker)]
        n = max((id_number(s, worker) for s in seen), default=0) + 1
        tid = f"{worker}-{n}"
        rec = {"v": 1, "id": tid, "worker": worker, "msg": msg, "ts": int(now)}
        if key is not None:
            rec["key"] = key
        # whole or absent: a racing `told` must never read (and consume) half a message
        if not store.create_new(os.path.join(tells, f"{tid}.json"), store.dumps_state(rec) + "\n"):
            continue
        return tid
    raise AskError("could not create a tell id after 50 tries (contention in tells/)")


def keyed_tell(tells: AnyPath, worker: str, key: str) -> str | None:
    """The id of the tell to `worker` queued by request `key` (pending or read), if any."""
    check_worker(worker)
    for d in (tells, os.path.join(tells, "consumed")):
        for stem in _stems(d, worker):
            try:
                rec = store.read_json(os.path.join(d, f"{stem}.json"))
            except CorruptState:
                continue
            if isinstance(rec, dict) and rec.get("key") == key:
                return stem
    return None


def take_tells(tells: AnyPath, worker: str) -> list[str]:
    """Claim every pending tell for `worker` by renaming it into consumed/: a tell is
    delivered at most once even when two readers race."""
    check_worker(worker)
    if not os.path.isdir(tells):
        return []
    done = os.path.join(tells, "consumed")
    try:
        os.mkdir(done)
    except FileExistsError:
        if not os.path.isdir(done):
            raise  # as Path.mkdir(exist_ok=True) does: a file stands where the dir goes
    pending = sorted(_stems(tells, worker), key=lambda stem: id_number(stem, worker))
    out = []
    for stem in pending:
        if id_number(stem, worker) == 0:
            continue
        name = f"{stem}.json"
        try:
            os.rename(os.path.join(tells, name), os.path.join(done, name))
        except FileNotFoundError:
            continue  # another reader took it
        try:
            os.utime(os.path.join(done, name))  # its mtime now says when it was read (the sweep)
        except OSError:
            pass
        try:
            rec = store.read_json(os.path.join(done, name))
            msg = rec.get("msg") if isinstance(rec, dict) else None
        except CorruptState:
            msg = None
        out.append(msg if isinstance(msg, str) else "(an unreadable tell)")
    return out


def sweep_consumed(tells: AnyPath, keep_s: float, now: float) -> list[str]:
    """Delete tells read more than `keep_s` ago from tells/consumed/ (their mtime is when they
    were read), keeping each worker's newest, so a worker's tell ids never start over. The
    ids removed."""
    done = os.path.join(tells, "consumed")
    try:
        names = [n for n in os.listdir(done) if n.endswith(".json")]
    except OSError:
        return []
    newest: dict[str, tuple[int, str]] = {}
    for n in names:
        head, _, num = n[:-5].rpartition("-")
        if head and num.isdecimal() and int(num) >= newest.get(head, (-1, ""))[0]:
            newest[head] = (int(num), n)
    keep = {n for _, n in newest.values()}
    out = []
    for n in sorted(names):
        path = os.path.join(done, n)
        try:
            if n in keep or now - os.stat(path).st_mtime < keep_s:
                continue
            os.unlink(path)
        except OSError:
            continue  # gone already, or not ours to remove: the next beat tries again
        out.append(n[:-5])
    return out
