"""Who holds the beat lock (a pulse, a foreground `looop tick`, or nobody), read from the lock
and the pid files its holders write: `looop status`, `ls` and a beat that finds the lock
taken all ask, so it loads no fleet rows."""

from __future__ import annotations

import os

from looop.home import locks, store, where


def _text(path: str) -> str:
    try:
        return store.read_text(path) or ""
    except OSError:
        return ""


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


def beat_holder_at(data: str) -> tuple[str, str] | None:
    """Who holds the beat lock: ("pulse", pid), ("tick", pid) or None. Each holder writes its
    pid file right after taking the lock, so a file left by a killed holder is the older one;
    a holder that has not written yet reads as a pulse with pid ''."""
    lock_dir = where.join(data, where.LOCKS)
    if not locks.flock_held(where.join(lock_dir, "lock")):
        return None
    tick_file, pid_file = where.join(lock_dir, "tick.pid"), where.join(lock_dir, "pid")
    tick_pid = _text(tick_file).strip()
    if tick_pid and _mtime(tick_file) >= _mtime(pid_file):
        return "tick", tick_pid
    return "pulse", _text(pid_file).strip()
