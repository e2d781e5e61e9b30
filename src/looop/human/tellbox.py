"""Worker ids and tells: the part of the mailbox the hot verbs use (`told`, `tell`, and
`claim`'s holder check), without `re` or pathlib. human/mailbox.py re-exports every name."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.boxfolder import Folder
from looop.home.errors import CorruptState, LooopError
from looop.home.plain import echo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from looop.home.store import AnyPath

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


def stems(d: Folder, worker: str) -> list[str]:
    """Stems of d's `<worker>-*.json` files (a bounded listing: boxfolder.FOLDER_MAX)."""
    pre = f"{worker}-"
    return [n[:-5] for n in d.names(".json") if n.startswith(pre) and len(n) >= len(pre) + 5]


def _refuse(d: Folder) -> None:
    """A folder a box made a symlink (or a file) is never followed: said, as an error."""
    if d.refused is not None:
        raise store.NotRegular(errno.ELOOP, d.refused, d.path)


def new_tell(tells: AnyPath, worker: str, msg: str, now: float, key: str | None = None) -> str:
    """Queue steering for a worker (the caller checks it is live); returns the tell id.
    `key`: the home's request key of a worker away from home (keyed_tell finds it again)."""
    check_worker(worker)
    if not msg.strip():
        raise AskError("a tell needs a message")
    os.makedirs(tells, exist_ok=True)
    with Folder(tells) as box, box.sub("consumed") as done:
        _refuse(box)
        seen = [*stems(box, worker), *stems(done, worker)]
    rec = {"v": 1, "worker": worker, "msg": msg, "ts": int(now), "key": key}
    # whole or absent: a racing `told` must never read (and consume) half a message
    return str(create_numbered(tells, worker, seen, rec, "a tell")["id"])


def create_numbered(
    folder: AnyPath, worker: str, seen: list[str], rec: dict[str, object], what: str
) -> dict[str, object]:
    """`rec` (a None key or land left out) created as <worker>-<n>.json in `folder`, exclusively and
    whole, n past every id `seen` (rescanned past a race); the record with its id."""
    n = max((id_number(s, worker) for s in seen), default=0)
    for _ in range(50):
        n += 1  # taken meanwhile (or beyond the listing's bound): the next one
        out = {k: v for k, v in rec.items() if v is not None or k not in ("key", "land")}
        out["id"] = f"{worker}-{n}"
        path = os.path.join(folder, f"{out['id']}.json")
        if store.create_new(path, jsonio.canonical(out) + "\n"):
            return out
    where_ = os.path.basename(os.fspath(folder).rstrip("/"))
    raise AskError(f"could not create {what} id after 50 tries (contention in {where_}/)")


def keyed(dirs: tuple[Folder, ...], worker: str, key: str) -> str | None:
    """The newest of `worker`'s records in `dirs` made for request `key`, if any."""
    for d in dirs:
        for stem in sorted(stems(d, worker), key=lambda s: id_number(s, worker), reverse=True):
            if id_number(stem, worker) == 0:
                continue
            try:
                rec = d.read_json(f"{stem}.json")
            except CorruptState:
                continue
            if isinstance(rec, dict) and rec.get("key") == key:
                return stem
    return None


def keyed_tell(tells: AnyPath, worker: str, key: str) -> str | None:
    """The id of the tell to `worker` queued by request `key` (pending or read), if any."""
    check_worker(worker)
    with Folder(tells) as box, box.sub("consumed") as done:
        return keyed((box, done), worker, key)


def _consumed(box: Folder) -> Folder:
    with contextlib.suppress(FileExistsError):
        os.mkdir("consumed", dir_fd=box.fd)
    return box.sub("consumed")


def take_tells(tells: AnyPath, worker: str) -> list[str]:
    """Claim every pending tell for `worker` by renaming it into consumed/: a tell is
    delivered at most once even when two readers race. Every name is relative to the folders'
    fds: a consumed/ a box made a symlink is refused (store.NotRegular), never moved into."""
    check_worker(worker)
    with Folder(tells) as box:
        _refuse(box)
        if box.fd < 0:
            return []
        with _consumed(box) as done:
            _refuse(done)
            pending = sorted(stems(box, worker), key=lambda stem: id_number(stem, worker))
            taken = [_take(box, done, f"{s}.json") for s in pending if id_number(s, worker)]
    return [msg for msg in taken if msg is not None]


def take_tell(tells: AnyPath, worker: str, tid: str, back: bool = False) -> str | None:
    """Claim the one tell `tid` as take_tells does (None: already read); `back`: a claimed
    one put back, pending again (what it was typed into did not take it)."""
    check_worker(worker)
    if not id_number(tid, worker):
        return None
    with Folder(tells) as box:
        _refuse(box)
        if box.fd < 0:
            return None
        with _consumed(box) as done:
            _refuse(done)
            if not back:
                return _take(box, done, f"{tid}.json")
            os.rename(f"{tid}.json", f"{tid}.json", src_dir_fd=done.fd, dst_dir_fd=box.fd)
            return None


def _take(box: Folder, done: Folder, name: str) -> str | None:
    """One tell moved into consumed/ and read there; None when another reader took it."""
    try:
        os.rename(name, name, src_dir_fd=box.fd, dst_dir_fd=done.fd)
    except FileNotFoundError:
        return None  # another reader took it
    try:  # its mtime now says when it was read (the sweep)
        os.utime(name, dir_fd=done.fd, follow_symlinks=False)
    except OSError:
        pass
    try:
        rec = done.read_json(name)
        msg = rec.get("msg") if isinstance(rec, dict) else None
    except CorruptState:
        msg = None
    return msg if isinstance(msg, str) else "(an unreadable tell)"


def sweep_consumed(tells: AnyPath, keep_s: float, now: float) -> list[str]:
    """Delete tells read more than `keep_s` ago from tells/consumed/ (their mtime is when they
    were read), keeping each worker's newest, so a worker's tell ids never start over. The
    ids removed. Only regular files, named relative to the folder's fd: a consumed/ a box made
    a symlink is refused (store.NotRegular) and nothing it points at is touched."""
    with Folder(tells) as box, box.sub("consumed") as done:
        _refuse(box)
        _refuse(done)
        names = done.names(".json")
        newest: dict[str, tuple[int, str]] = {}
        for n in names:
            head, _, num = n[:-5].rpartition("-")
            if head and num.isdecimal() and int(num) >= newest.get(head, (-1, ""))[0]:
                newest[head] = (int(num), n)
        keep = {n for _, n in newest.values()}
        out = []
        for n in names:
            st = done.lstat(n)
            if n in keep or st is None or not stat.S_ISREG(st.st_mode):
                continue
            if now - st.st_mtime < keep_s:
                continue
            try:
                done.unlink(n)
            except OSError:
                continue  # not ours to remove: the next beat tries again
            out.append(n[:-5])
    return out


# `looop told [WORKER]`: the work of both faces (the click-free one here, `serve`, and the click
# command in cli/mailbox.py); `looop tell` is human/leases.py
def run_told(worker: str | None, env: Mapping[str, str]) -> None:
    data = where.resolve(env, os.getcwd())[0]
    who = worker or env.get("LOOOP_SESSION_ID", "")
    if not who:
        raise LooopError("name the worker (`looop told WORKER`) or run it inside a worker")
    check_worker(who, "worker id" if worker else "LOOOP_SESSION_ID")
    for msg in take_tells(os.path.join(data, where.TELLS), who):
        echo(msg)


def parse_told(argv: list[str]) -> tuple[str | None] | None:
    """(worker,) for `told` and `told WORKER`; None (click's turn) for anything else."""
    rest = argv[1:]
    if len(rest) > 1 or (rest and rest[0].startswith("-")):
        return None
    return (rest[0] if rest else None,)


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """`told [WORKER]` in its plain spellings, run; False: click's."""
    told = parse_told(argv)
    if told is not None:
        run_told(*told, env)
    return told is not None
