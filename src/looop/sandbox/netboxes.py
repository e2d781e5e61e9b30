"""The boxes looop's network filter (sandbox/netfilter.py) serves: one file each, written by the
sandbox host's caller when it wraps a box (sandbox/boxhost.py) and read by the filter when one of
the box's connections comes, so a box registered after the filter started is known at once,
and a filter started anew knows every box still running. The filter keeps each record it read
(`Boxes.kept`): a file that goes (a tmp cleaner emptying the runtime dir) is written back by
its sweep while the box runs, and a box ends only when no process names it. Light: a box's
launcher imports it on every start."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from looop.home import jsonio
from looop.home.hashing import fnv1a_128


class Boxes:
    """The registered boxes under `root` (a private dir), each named by a hash of its proxy
    user."""

    def __init__(self, root: str) -> None:
        self.root = root
        # the records this process read or wrote, by file, with the file's time when last
        # seen (the filter's own copy: a removed file is not a box that ended)
        self.kept: dict[str, tuple[dict[str, Any], float]] = {}

    def _path(self, user: str) -> str:
        # a name, not a secret: the folder is private and the user a random 128-bit id
        return os.path.join(self.root, fnv1a_128(user.encode("utf-8", "surrogateescape")) + ".json")

    def add(
        self,
        user: str,
        digest: str,
        allowed: list[str],
        denied: list[str],
        mark: str = "",
        worker: str = "",
    ) -> None:
        """Register a box (`digest`: its token's SHA-256, as no file holds the token; its lists
        as srt checked them); `mark`: how its credentials show in
        its processes' command lines (bubblewrap's --setenv), by which `sweep` tells a box
        that ended; `worker`: the worker whose box it is, the one its contract door speaks
        for (none for a beat's, a run_shell's or a verify's box: they have no door)."""
        rec: dict[str, Any] = {"token_sha256": digest, "allowed": allowed, "denied": denied}
        rec["mark"] = mark or user
        if worker:
            rec["worker"] = worker
        self._keep(self._path(user), rec)

    def _keep(self, path: str, rec: dict[str, Any]) -> None:
        """Write the record (atomically, 0600 in the 0700 folder, made again when gone) and
        keep it."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(jsonio.dumps(rec))
        os.replace(tmp, path)
        since = self.kept[path][1] if path in self.kept else _mtime(path, 0.0)
        self.kept[path] = (rec, since)

    def joined(self, user: str, ports: list[int]) -> None:
        """Note on the box's record that it handed these ports to the filter, so that a filter
        started anew can listen on them again (sandbox/netfilter.py)."""
        rec = self.record(user)
        if rec is None:
            return
        self._keep(self._path(user), {**rec, "user": user, "ports": ports})

    def joins(self) -> list[dict[str, Any]]:
        """The records of the boxes that handed ports over (each with its user and ports)."""
        recs = [_load(path) for path in self._paths()]
        return [r for r in recs if r and isinstance(r.get("user"), str) and r.get("ports")]

    def record(self, user: str) -> dict[str, Any] | None:
        """The box's record: the one kept, else its file's (kept from then on)."""
        return self._record(self._path(user))

    def _record(self, path: str) -> dict[str, Any] | None:
        got = self.kept.get(path)
        if got is not None:
            return got[0]
        rec = _load(path)
        if rec is not None:
            self.kept[path] = (rec, _mtime(path, 0.0))
        return rec

    def _paths(self) -> list[str]:
        try:
            names = sorted(n for n in os.listdir(self.root) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        return [os.path.join(self.root, n) for n in names]

    def speaking(self, worker: str) -> bool:
        """Whether a box of `worker` is still registered (its door open)."""
        paths = set(self._paths()) | set(self.kept)
        return any((self._record(p) or {}).get("worker") == worker for p in sorted(paths))

    def remove(self, user: str) -> None:
        path = self._path(user)
        self.kept.pop(path, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def sweep(self, lines: list[str], now: float, grace_s: float) -> int:
        """Forget the boxes no process names any more (`lines`: every command line), once
        older than `grace_s` (the caller runs the line it was wrapped into after the wrap):
        an ended box's credentials open nothing, even where they were printed. A box still
        running whose file went (the runtime dir emptied) has it written back. The number of
        boxes left."""
        on_disk = set(self._paths())
        left = 0
        for path in sorted(on_disk | set(self.kept)):
            rec = self._record(path)
            if rec is None:
                continue
            mark = str(rec.get("mark") or "")
            since = _mtime(path, self.kept[path][1])  # the file's, while it is there
            if now - since < grace_s or (mark and any(mark in ln for ln in lines)):
                left += 1
                # kept here all the same if it fails: only a filter started anew would not know it
                with contextlib.suppress(OSError):
                    if path not in on_disk:
                        self._keep(path, rec)
                continue
            self.kept.pop(path, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return left


def _mtime(path: str, default: float) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return default


def _load(path: str) -> dict[str, Any] | None:
    """One box's record, None where it is gone, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = jsonio.loads(f.read())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def command_lines(proc: str = "/proc") -> dict[int, bytes]:
    """Every process's command line (NUL-separated, as the kernel keeps it), by pid."""
    out: dict[int, bytes] = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                out[int(pid)] = f.read()
        except OSError:
            continue
    return out
