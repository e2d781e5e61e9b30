"""Dir locks: flocks that serialise read-modify-write of shared state, and the liveness
flock a running holder keeps (the kernel drops it when the holder dies).

Apart from store.py: `fcntl` is a shared library, and the hot verbs that take no lock
(told, cost report) never load it."""

from __future__ import annotations

import fcntl
import os

from looop.hot.store import mkdirs

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from looop.hot.store import AnyPath


class dir_lock:
    """A blocking exclusive flock serialising read-modify-write of shared state.

    A class, not @contextlib.contextmanager: contextlib costs the hot verbs ~4 ms to import."""

    def __init__(self, lock_file: AnyPath) -> None:
        self._path = lock_file
        self._fd = -1

    def __enter__(self) -> None:
        mkdirs(os.path.dirname(os.fspath(self._path)))
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
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
