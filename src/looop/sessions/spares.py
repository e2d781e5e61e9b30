"""A preloaded host's spare: one fork of the host always waiting for the next request.

Forking a preloaded image (the beat host's is about 300 modules) costs about 1.5 ms, on the
caller's clock when it happens per request. Instead one fork, the spare, waits in accept()
and becomes the request's worker itself; the host only forks the next spare once the spare
says it took a request, and ends once a spare says the host is over (idle, stopped, stale).
A spare never outlives its host (PR_SET_PDEATHSIG); what it became does.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Callable

from looop.core.proc import open_pidfd
from looop.core.tempsweep import pid_alive

TAKEN = b"t"  # the spare took a request to run: fork the next
OVER = b"o"  # idle, stopped or stale: the host ends
SPARE_FAILS = 3  # spares dead without a word in a row before the host gives up
SETTLE_S = 0.1  # at most this long without a spare after one took a request
_PR_SET_PDEATHSIG = 1

Prctl = Callable[..., int]


def keep_a_spare(notes: int, spare: Callable[[], None], listener: int) -> int:
    """The host's loop: fork `spare` (which says TAKEN or OVER on the pipe whose read end is
    `notes`, one byte), again after each TAKEN; the host's exit code once one says OVER."""
    fails = 0
    while True:
        try:
            pid = os.fork()
        except OSError as e:
            sys.stderr.write(f"looop host: cannot fork a spare: {e}\n")
            return 1
        if pid == 0:
            try:
                spare()
            finally:
                os._exit(0)
        pidfd = open_pidfd(pid)
        try:
            note = _await_note(notes, pid, pidfd)
            if note == TAKEN:
                fails = 0
                _settle(listener, pidfd)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if note == OVER:
            return 0
        if note != TAKEN:
            fails += 1
            if fails >= SPARE_FAILS:
                sys.stderr.write("looop host: its spares keep dying; the host ends\n")
                return 1


def _await_note(notes: int, pid: int, pidfd: int | None) -> bytes:
    """The spare's one byte, or b"" once it died without one."""
    watched = [notes] if pidfd is None else [notes, pidfd]
    while True:
        ready, _, _ = select.select(watched, [], [], 1.0 if pidfd is None else None)
        if notes in ready:
            return os.read(notes, 1)
        if pidfd in ready or (pidfd is None and not pid_alive(pid)):
            ready, _, _ = select.select([notes], [], [], 0)  # a last word, then death
            return os.read(notes, 1) if ready else b""


def _settle(listener: int, taken: int | None) -> None:
    """Fork the next spare once the request just taken is done, or another caller waits, or
    SETTLE_S passed: a fork beside a starting request slows it (both copy the same pages)."""
    watched = [listener] if taken is None else [listener, taken]
    select.select(watched, [], [], SETTLE_S)


def die_with_parent(prctl: Prctl, parent: int) -> bool:
    """In a spare: SIGKILL once the host (pid `parent`) goes. False when it already went."""
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent  # else adopted before the line above


def outlive_parent(prctl: Prctl) -> None:
    """In a spare that took its request: what it runs finishes even if the host goes."""
    prctl(_PR_SET_PDEATHSIG, 0, 0, 0, 0)
