"""A home's live pulses, found from the runtime dir even when its data dir is gone.

A home is a data dir's path. Each pulse registers in
`<runtime>/looop-<uid>/homes/<fnv128(path)>/pulse-<pid>.json` — its pid, the path, and the
identity (st_dev, st_ino) of the data dir and lock file it runs on — and holds an flock on
that file for its life: liveness is the flock (the kernel drops it on death), never a pid
probe. `up` refuses while a pulse of the home runs on another data dir, and `down` and
`status` find it when the data dir was removed or replaced under it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

from looop.home import jsonio, where
from looop.home.hashing import fnv1a_128

if TYPE_CHECKING:
    from typing import Any

HOMES = "homes"


def identity(path: str) -> list[int] | None:
    """[st_dev, st_ino] of a path (its own, not a symlink's target), None when it is gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def home_dir(base: str, data: str) -> str:
    """The registry folder of one home (a data dir's absolute path)."""
    key = fnv1a_128(os.path.abspath(data).encode("utf-8", "surrogateescape"))
    return where.join(where.join(where.runtime_dir(base), HOMES), key)


def home_folder(base: str, data: str) -> str:
    """The home's registry folder, made (0700, ours) when it is not there."""
    folder = home_dir(base, data)
    _private_dirs(folder)
    return folder


def _private_dirs(path: str) -> None:
    """The runtime dir and each folder below it: 0700, ours (another user's is refused)."""
    parts = [path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))]
    for d in reversed(parts):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            st = os.lstat(d)
            if st.st_uid != os.geteuid() or not os.path.isdir(d) or os.path.islink(d):
                raise OSError(f"{d} is not a private directory of this user") from None


def register(base: str, data: str, record: dict[str, Any]) -> tuple[int, str]:
    """Enter this process in its home's registry; (fd to hold, file). The file is locked
    before it takes its name, so a reader never sees an entry its owner does not hold."""
    folder = home_dir(base, data)
    name = where.join(folder, f"pulse-{os.getpid()}.json")
    tmp = where.join(folder, f".pulse-{os.getpid()}.{os.urandom(3).hex()}.tmp")
    for tries_left in (1, 0):  # a `down` of the home may remove the empty folder meanwhile
        _private_dirs(folder)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            break
        except FileNotFoundError:
            if not tries_left:
                raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        body = {"pid": os.getpid(), "data": os.path.abspath(data), **record}
        os.write(fd, (jsonio.dumps(body) + "\n").encode())
        os.replace(tmp, name)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, name


def sweep(base: str, data: str) -> None:
    """The home's registry folder, once no pulse is in it (`looop down`'s last step)."""
    live(base, data)  # a dead pulse's entry goes first
    try:
        os.rmdir(home_dir(base, data))
    except OSError:
        pass  # a live pulse's entry is in it, or it is gone already


def unregister(fd: int, name: str) -> None:
    """Leave the registry (a clean stop; a killed pulse's entry is pruned by the next reader)."""
    with contextlib.suppress(OSError):
        os.unlink(name)
    os.close(fd)


def live(base: str, data: str) -> list[dict[str, Any]]:
    """The registered pulses of this home that are alive (their flock is held); entries of
    dead ones are removed on the way."""
    folder = home_dir(base, data)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for n in names:
        if not (n.startswith("pulse-") and n.endswith(".json")):
            continue
        path = where.join(folder, n)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                rec = _parse(os.read(fd, 65536))
                if rec is not None:
                    out.append(rec)
                continue
            os.unlink(path)  # nobody holds it: its pulse is dead
        except OSError:
            continue
        finally:
            os.close(fd)
    return out


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = jsonio.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int) or rec["pid"] <= 0:
        return None
    return rec


def strays(base: str, data: str) -> list[dict[str, Any]]:
    """Live pulses of this home that run on another data dir than the one at its path now
    (it was removed, or replaced by a new one): the ones no lock in the data dir shows."""
    now = identity(data)
    return [r for r in live(base, data) if r.get("data_id") != now]
