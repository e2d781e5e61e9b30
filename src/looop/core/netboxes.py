"""The boxes looop's network filter (core/netfilter.py) serves: one file each, written by the
sandbox host's caller when it wraps a box (core/sbxhost.py) and read by the filter when one of
the box's connections comes, so a box registered after the filter started is known at once,
and a filter started anew knows every box still running. Light: a box's launcher imports it
on every start."""

from __future__ import annotations

import os
from typing import Any

from looop.home import ljson
from looop.home.hashing import fnv1a_128


class Boxes:
    """The registered boxes under `root` (a private dir), each named by a hash of its proxy
    user."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, user: str) -> str:
        # a name, not a secret: the folder is private and the user a random 128-bit id
        return os.path.join(self.root, fnv1a_128(user.encode("utf-8", "surrogateescape")) + ".json")

    def add(
        self,
        user: str,
        token: str,
        allowed: list[str],
        denied: list[str],
        mark: str = "",
        worker: str = "",
    ) -> None:
        """Register a box (its lists as srt checked them); `mark`: how its credentials show in
        its processes' command lines (bubblewrap's --setenv), by which `sweep` tells a box
        that ended; `worker`: the worker whose box it is, the one its contract door speaks
        for (none for a beat's, a run_shell's or a verify's box: they have no door)."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        rec: dict[str, Any] = {"token": token, "allowed": allowed, "denied": denied}
        rec["mark"] = mark or user
        if worker:
            rec["worker"] = worker
        self._write(self._path(user), rec)

    @staticmethod
    def _write(path: str, rec: dict[str, Any]) -> None:
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ljson.dumps(rec))
        os.replace(tmp, path)

    def joined(self, user: str, ports: list[int]) -> None:
        """Note on the box's record that it handed these ports to the filter, so that a filter
        started anew can listen on them again (core/netfilter.py)."""
        rec = self.record(user)
        if rec is None:
            return
        rec.update(user=user, ports=ports)
        self._write(self._path(user), rec)

    def joins(self) -> list[dict[str, Any]]:
        """The records of the boxes that handed ports over (each with its user and ports)."""
        recs = [_load(path) for path in self._paths()]
        return [r for r in recs if r and isinstance(r.get("user"), str) and r.get("ports")]

    def record(self, user: str) -> dict[str, Any] | None:
        return _load(self._path(user))

    def _paths(self) -> list[str]:
        try:
            names = sorted(n for n in os.listdir(self.root) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        return [os.path.join(self.root, n) for n in names]

    def speaking(self, worker: str) -> bool:
        """Whether a box of `worker` is still registered (its door open)."""
        return any(rec.get("worker") == worker for rec in map(_load, self._paths()) if rec)

    def remove(self, user: str) -> None:
        try:
            os.unlink(self._path(user))
        except FileNotFoundError:
            pass

    def sweep(self, lines: list[str], now: float, grace_s: float) -> int:
        """Forget the boxes no process names any more (`lines`: every command line), once
        older than `grace_s` (the caller runs the line it was wrapped into after the wrap):
        an ended box's credentials open nothing, even where they were printed. The number of
        boxes left."""
        left = 0
        for path in self._paths():
            rec = _load(path)
            if rec is None:
                continue
            try:
                young = now - os.stat(path).st_mtime < grace_s
            except OSError:
                continue
            mark = str(rec.get("mark") or "")
            if young or (mark and any(mark in line for line in lines)):
                left += 1
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        return left


def _load(path: str) -> dict[str, Any] | None:
    """One box's record, None where it is gone, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = ljson.loads(f.read())
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
