"""Dir locks: flocks that serialise read-modify-write of shared state, and the liveness
flock a running holder keeps (the kernel drops it when the holder dies), and who holds the
beat's (`beat_holder_at`: a pulse, a foreground `looop tick`, or nobody).

A lock a worker's box can reach (a file in claims/) could be held by the box forever: the host
never waits on one without a bound (folder_lock). Apart from store.py: `fcntl` is a shared
library, and the hot verbs that take no lock (told, cost report) never load it."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from typing import TYPE_CHECKING

from looop.home import store, where
from looop.home.store import mkdirs

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.home.store import AnyPath


_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FOLDER_LOCK_TRIES = 25  # a folder's own lock is waited for ~0.5 s at most
FOLDER_LOCK_PAUSE_S = 0.02


class dir_lock:
    """A blocking exclusive flock serialising read-modify-write of shared state.

    A class, not @contextlib.contextmanager: contextlib costs the hot verbs ~4 ms to import."""

    def __init__(self, lock_file: AnyPath) -> None:
        self._path = lock_file
        self._fd = -1

    def __enter__(self) -> None:
        mkdirs(os.path.dirname(os.fspath(self._path)))
        fd = os.open(self._path, _LOCK_FLAGS, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


def try_flock(lock_file: AnyPath) -> int | None:
    """Take a non-blocking exclusive flock; the fd (hold it) or None when held elsewhere."""
    mkdirs(os.path.dirname(os.fspath(lock_file)))
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def flock_held(lock_file: AnyPath) -> bool:
    """True when some live process holds the flock (the kernel drops it on death)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class folder_lock:
    """Serialises read-modify-write of a folder a worker's box can write (claims/).

    Two flocks: `private` (under the data dir's .lock/, which no box reaches) serialises the
    host's processes with a plain wait; the folder's own `shared` lock, which a box's `looop
    claim` still takes, is waited for FOLDER_LOCK_TRIES tries only. A box that holds it longer
    (or put a symlink or a FIFO in its place) is not waited on: `ignored` says why. In a box,
    where the private one cannot be made, the shared one alone serialises the boxes."""

    def __init__(
        self,
        private: AnyPath,
        shared: AnyPath,
        tries: int = FOLDER_LOCK_TRIES,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._private, self._shared = private, shared
        self._tries, self._pause = tries, pause
        self._fds: list[int] = []
        self.ignored: str | None = None

    def __enter__(self) -> folder_lock:
        try:
            self._take()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _take(self) -> None:
        try:
            mkdirs(os.path.dirname(os.fspath(self._private)))
            fd = os.open(self._private, _LOCK_FLAGS, 0o600)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
        else:
            self._fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        shared = self._open_shared()
        if shared is not None:
            if self._wait(shared):
                self._fds.append(shared)
            else:
                os.close(shared)
                self.ignored = f"{self._shared} is held too long by another process: not waited on"

    def _open_shared(self) -> int | None:
        try:
            fd = os.open(self._shared, _LOCK_FLAGS, 0o644)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EACCES):
                raise
            self.ignored = f"{self._shared} is not a lock file ({e.strerror}): not used"
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.ignored = f"{self._shared} is not a regular file: not used"
            return None
        return fd

    def _wait(self, fd: int) -> bool:
        for n in range(self._tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if n + 1 < self._tries:
                    self._pause(FOLDER_LOCK_PAUSE_S)
        return False

    def __exit__(self, *exc: object) -> None:
        for fd in reversed(self._fds):
            os.close(fd)
        self._fds.clear()


def _pid_text(path: str) -> str:
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
    """Who holds the beat lock: ("pulse", pid), ("tick", pid) or None, read from the lock and
    the pid file its holder writes right after taking it (so a file left by a killed holder
    is the older one; a holder that has not written yet reads as a pulse with pid ''). `looop
    status`, `ls` and a beat that finds the lock taken ask; it loads no fleet rows."""
    lock_dir = where.join(data, where.LOCKS)
    if not flock_held(where.join(lock_dir, "lock")):
        return None
    tick_file, pid_file = where.join(lock_dir, "tick.pid"), where.join(lock_dir, "pid")
    tick_pid = _pid_text(tick_file).strip()
    if tick_pid and _mtime(tick_file) >= _mtime(pid_file):
        return "tick", tick_pid
    return "pulse", _pid_text(pid_file).strip()
