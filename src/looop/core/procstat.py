"""A process's line in /proc/PID/stat, read once for every room that asks of a process's state,
parent, group or start time; the tree below a process; whether a terminal's foreground waits
on its reader. And what a process of looop's calls itself (`ps -o comm`, 15 bytes): a
subreaper's sweep tells looop's own long-lived processes (named `looop:<id>` or `looop-…`)
from a run's leftovers by it."""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.home.clock import Clock

# Per machine, read(2)'s number and those of the waits on several descriptors at once (poll,
# select, epoll: a TUI's or a relay's, whose wait says nothing of the terminal alone)
_CALLS = {
    "x86_64": (0, frozenset({7, 23, 232, 270, 271, 281, 441})),
    "aarch64": (63, frozenset({22, 72, 73, 441})),
}
_DEV_TTY = os.makedev(5, 0)  # /dev/tty: the reader's own terminal (getpass, ssh)
_MOST = 64  # processes looked at under one worker


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields after the process's name (the state first, then the parent, the group, …),
    or None when it is gone or /proc cannot be read. The name sits in brackets and may hold
    anything, brackets and spaces included, so the fields start after its last `)`."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    close = raw.rfind(b")")
    return raw[close + 2 :].split() if close >= 0 else None


def reads_terminal(pid: int) -> bool | None:
    """True when a process of the foreground group on `pid`'s terminal, `pid` or one under it,
    is blocked reading that terminal; False when the kernel shows each of them doing else
    (asleep, running, waiting for a child); None when it cannot say (no /proc, a syscall hidden
    from us, another machine, a wait on several descriptors)."""
    calls = _CALLS.get(os.uname().machine)
    rest = stat_fields(pid)
    if calls is None or rest is None or len(rest) < 6 or int(rest[4]) == 0:
        return None
    tty, fg, seen = int(rest[4]), int(rest[5]), False
    todo, looked = [pid], 0
    while todo and looked < _MOST:
        p = todo.pop()
        looked += 1
        got = stat_fields(p)
        if got is not None and len(got) > 2 and int(got[2]) == fg:
            said = _reading(p, tty, calls)
            if said:
                return True
            seen = seen or said is None
        todo += children(p)
    return None if seen or looked == 0 else False


def _reading(pid: int, tty: int, calls: tuple[int, frozenset[int]]) -> bool | None:
    try:
        with open(f"/proc/{pid}/syscall", "rb") as f:
            words = f.read().split()
        if not words or words[0] == b"running":
            return False
        nr = int(words[0])
        if nr == calls[0]:
            fd = f"/proc/{pid}/fd/{int(words[1], 16)}"
            if not os.readlink(fd).startswith("/dev/"):
                return False  # a pipe's, a file's: never a path a box made is followed
            return os.stat(fd).st_rdev in (tty, _DEV_TTY)
    except (OSError, ValueError, IndexError):
        return None
    return None if nr in calls[1] else False


def children(pid: int | str = "self") -> list[int]:
    """A process's direct children (every thread's; ours by default), from
    /proc/<pid>/task/*/children."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def name_self(title: str) -> None:
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, title.encode("utf-8", "replace")[:15])
    except OSError:
        pass
    finally:
        os.close(fd)


WEB_TITLE = b"looop: web "  # `looop web`'s title in `ps -o args` (core/proctitle.py)


def is_web(cmdline: bytes) -> bool:
    """Whether a /proc/PID/cmdline is `looop web`'s: its argv, or the title it shows."""
    return b"web" in cmdline.split(b"\0") or cmdline.startswith(WEB_TITLE)


def stat_of(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, session id, start time in clock ticks since boot), or None."""
    rest = stat_fields(pid)
    try:
        return (
            None if rest is None else (rest[0].decode(), int(rest[1]), int(rest[3]), int(rest[19]))
        )
    except (ValueError, IndexError):
        return None


def tree(pid: int, most: int = 4096) -> list[int]:
    """`pid` and every descendant, parents before their children (at most `most`)."""
    out, seen, i = [pid], {pid}, 0
    while i < len(out) and len(out) < most:
        for child in children(out[i]):
            if child not in seen:
                seen.add(child)
                out.append(child)
        i += 1
    return out[:most]


def signal_tree(pid: int, sig: int, rounds: int = 8) -> int:
    """Send `sig` to `pid` and every process below it, whatever group or session each leads
    (a sandbox's agent runs in bubblewrap's new session): children first, so none is left
    running to notice its parent stop; again while new ones appear (a fork caught mid-way).
    How many were signalled."""
    done: set[int] = set()
    for _ in range(rounds):
        todo = [p for p in reversed(tree(pid)) if p not in done]
        if not todo:
            break
        for p in todo:
            with contextlib.suppress(OSError):
                os.kill(p, sig)
            done.add(p)
    return len(done)


OWN_NAMES = (b"looop:", b"looop-")


def alive_not_looop(pid: int) -> bool:
    """Alive (not a zombie) and not looop's own: a session host or a supervisor that a
    worker started and that this supervisor adopted is another session, never a leftover."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    head, _, rest = raw.rpartition(b")")
    comm = head.partition(b"(")[2]
    return rest.split()[:1] not in ([b"Z"], [b"X"]) and not comm.startswith(OWN_NAMES)


def open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):  # AttributeError: an OS without pidfds
        return None


def await_pid(
    pid: int, done: Callable[[], bool], clock: Clock, until: float | None, nap: float = 0.02
) -> bool:
    """Wait until `done()` (True) or `until` passes (False; None waits as long as it takes),
    asleep on the process's pidfd where the OS has one (readable once it exits), else in naps."""
    fd = None if done() else open_pidfd(pid)
    try:
        while not done():
            left = None if until is None else until - clock.monotonic()
            if left is not None and left <= 0:
                return False
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                select.select([], [], [], nap if left is None else min(left, nap))
        return True
    finally:
        if fd is not None:
            os.close(fd)
