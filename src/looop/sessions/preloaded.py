"""What a preloaded host (the session host) does to start and to stay: its options, a session
of its own, its guard, its listening socket, its name in `ps`, the caller's limits applied to
what it forks, and the sweep of what gone hosts left behind.

The guard and the socket are abstract names (home/anchors.py), never files: with the runtime
dir emptied under it a host still answers, and no second host of its key can start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import socket

from looop.core import cgroup
from looop.home.anchors import anchor, hold
from looop.home.peers import LIMITS
from looop.sessions.hostnames import host_dir, host_options


def become_host(
    argv: list[str], lock_name: str, idle_default: float, taken: str
) -> tuple[str, str, float, int | None, int] | None:
    """A preloaded host's start: its options
    (--key, --base, --idle-s, --ready-fd), a session of its own, a second fork so that init
    adopts it, and its guard (`lock_name` formatted with the key: an abstract name) held.
    (key, base, idle_s, ready_fd, lock_fd), or None once it said `taken`: another host of that
    key holds it."""
    opts = host_options(argv)
    key, base = opts.get("--key", ""), opts.get("--base", "/tmp")
    idle_s = float(opts.get("--idle-s", str(idle_default)))
    ready_fd = int(opts["--ready-fd"]) if opts.get("--ready-fd", "").isdigit() else None
    if os.getsid(0) != os.getpid():  # started by hand; the spawner already made a session
        os.setsid()
    if os.fork() > 0:  # the starter waits for this intermediate; the host is adopted by init
        os._exit(0)
    cgroup.escape()  # started from a worker's run (the pulse's): never killed with that run
    lock_fd = hold(anchor(base, lock_name.format(key=key)))
    if lock_fd is None:
        say(ready_fd, f"ok {taken}")
        return None
    sweep(host_dir(base), base)
    return key, base, idle_s, ready_fd, lock_fd


_HOST_FILES = (".sock", ".lock", ".err")


def sweep(hdir: str, base: str) -> None:
    """What hosts that are gone left in the runtime dir (old builds that idled out, homes
    removed, crashes): an empty error file whose host's guard nobody holds; an older build's
    socket and lock whose lock nobody holds; a half-bound socket name or a rehearsal dir whose
    process is dead. A live host's is never touched: the sweeper takes that very guard (or
    lock) before it removes anything."""
    try:
        names = os.listdir(hdir)
    except OSError:
        return
    stems: set[str] = set()
    for name in names:
        path = os.path.join(hdir, name)
        if name.startswith(("host-", "beat-")) and name.endswith(_HOST_FILES):
            stems.add(name.rsplit(".", 1)[0])
        elif name.startswith("rehearsal-") and not _alive(name[10:]):
            remove_tree(path)
        elif (
            name.startswith(("host-", "beat-"))
            and ".sock." in name
            and not _alive(name.rsplit(".", 1)[1])
        ):
            with contextlib.suppress(OSError):  # listen_at's temporary name, its binder dead
                os.unlink(path)
    for stem in stems:
        guard = hold(anchor(base, f"{stem}.lock"))
        if guard is None:
            continue  # a live host's (this one's own among them)
        try:
            _sweep_host(os.path.join(hdir, stem))
        finally:
            os.close(guard)


def _sweep_host(stem: str) -> None:
    try:
        fd = os.open(stem + ".lock", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None  # a socket without a lock is no host's: none binds before it locks
    except OSError:
        return
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # a live host's
        with contextlib.suppress(OSError):
            os.unlink(stem + ".sock")
        with contextlib.suppress(OSError):
            if os.stat(stem + ".err").st_size == 0:  # one with words says why it died
                os.unlink(stem + ".err")
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(stem + ".lock")
    finally:
        if fd is not None:
            os.close(fd)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not a name we made: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) for the rehearsal's own few files, without
    shutil and the compression modules it loads into the host."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                remove_tree(e.path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def limit_plan(limits: object, nice: object) -> tuple[list[tuple[int, int, int]], int | None]:
    """In the host, before the fork: which of the caller's limits (and nice value) differ
    from the host's own, so the forked supervisor only sets those (lowering is always
    allowed; a limit the host cannot raise stays the host's)."""
    plan: list[tuple[int, int, int]] = []
    if isinstance(limits, dict):
        for name, pair in limits.items():
            which = getattr(resource, name, None) if name in LIMITS else None
            if which is None or not isinstance(pair, list) or len(pair) != 2:
                continue
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if ints and tuple(pair) != resource.getrlimit(which):
                plan.append((which, pair[0], pair[1]))
    want = None
    if isinstance(nice, int) and not isinstance(nice, bool):
        want = max(-20, min(19, nice))
        if want == os.getpriority(os.PRIO_PROCESS, 0):
            want = None
    return plan, want


def apply_limits(plan: list[tuple[int, int, int]], nice: int | None) -> None:
    """In the forked supervisor: what `limit_plan` found different."""
    if plan:
        for which, soft, hard in plan:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (soft, hard))
    if nice is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def say(fd: int | None, line: str) -> None:
    """A preloaded host's readiness line to its starter (who may no longer wait for it)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


def listen_at(sock: socket.socket, path: str) -> int:
    """Bind and listen under a temporary name, then rename onto `path`: a client sees a
    listening socket or none. The inode, for `unlisten`. An abstract name (`\\0…`) is bound
    as it is: only the guard's holder binds it, and it goes with the socket (0)."""
    if path.startswith("\0"):
        sock.bind(path)
        sock.listen(64)
        return 0
    tmp = f"{path}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock.bind(tmp)
    sock.listen(64)
    os.rename(tmp, path)
    return os.stat(path).st_ino


def unlisten(path: str, ino: int) -> None:
    """Remove our socket's name, not a successor's that took it meanwhile."""
    if path.startswith("\0"):
        return  # an abstract name is freed as its socket closes
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == ino:
            os.unlink(path)
