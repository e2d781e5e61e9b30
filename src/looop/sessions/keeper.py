"""The keeper: where no cgroup holds a session's runs (a user who is not root, or
LOOOP_NO_CGROUP=1), a small parent of its supervisor that outlives it and ends what it leaves.

Without a cgroup the supervisor contains a run as a subreaper: whatever a run starts and
orphans (a `setsid` daemon, a `nohup`, an `env -i` child) comes back to it, and it kills it at
the run's end. A supervisor that is SIGKILLed (the OOM killer, a stray `kill -9`) kills
nothing: its orphans would go to init and run on, unseen, while `ls` said the worker is dead.
So the supervisor's parent is a keeper, forked from it before the run (it shares its pages):
a subreaper too, holding the session's lock with it. When the supervisor is gone, however it
went, its orphans are the keeper's; it kills every one of them and their descendants (looop's
own processes, another session's supervisor or host, are spared as the supervisor spares
them), and only then exits — the lock is free, and `ls` says dead, once nothing of the
session runs. Its name in `ps` is `looop-keep` (`looop: keeper <id>` in `ps -o args`).

A keeper killed itself leaves the supervisor as it was before keepers: containment by its
sweep alone. Only `os`, `_signal` and the supervisor's own OS seam: every supervisor loads
this (in the session host, whose forks share it).
"""

from __future__ import annotations

import os
import time
from signal import SIG_IGN, SIGHUP, SIGINT, SIGKILL, SIGTERM, signal
from typing import Protocol

from looop.core.procs import children, signal_tree
from looop.core.proctitle import show_role
from looop.home.sessionfiles import valid_id
from looop.sessions.oscalls import alive_not_looop, set_subreaper


class Kept(Protocol):
    """What the keeper needs of the supervisor it forks (supervisor.Supervisor)."""

    sid: str
    argv: list[str]
    ready_fd: int | None

    def take_lock(self) -> bool: ...


SWEEP_S = 10.0  # at most this long ending what the supervisor left (a process in D state)
PAUSE_S = 0.01


def keep(sup: Kept) -> int | None:
    """Become the session's keeper and fork its supervisor: None in the supervisor (it goes
    on to run the session, its lock already held), the keeper's exit code in the keeper.
    None without a fork when the lock is not ours (the supervisor then says so) or no fork
    can be made (the supervisor runs without a keeper)."""
    if not sup.argv or not valid_id(sup.sid) or not sup.take_lock():
        return None
    set_subreaper()  # before the fork: the supervisor's orphans must find us, never init
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        return None
    if sup.ready_fd is not None:  # the supervisor says ready; the starter must see its EOF
        os.close(sup.ready_fd)
    show_role(f"looop: keeper {sup.sid}", "looop-keep")
    for sig in (SIGHUP, SIGINT, SIGTERM):  # a group's signal is the supervisor's to act on
        signal(sig, SIG_IGN)
    _wait_for(pid)
    end_orphans(time.monotonic() + SWEEP_S)
    return 0


def _wait_for(pid: int) -> None:
    """Reap children until the supervisor is among them (the only child until it dies)."""
    while True:
        try:
            got, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if got == pid:
            return


def end_orphans(deadline: float) -> None:
    """Kill every child of this process but looop's own, with all below it, until none is
    left (the orphans of a child killed come back to this subreaper) or the deadline."""
    while True:
        _reap()
        left = [p for p in children() if alive_not_looop(p)]
        if not left or time.monotonic() >= deadline:
            return
        for p in left:
            signal_tree(p, SIGKILL)
        time.sleep(PAUSE_S)


def _reap() -> None:
    while True:
        try:
            got, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if got == 0:
            return
