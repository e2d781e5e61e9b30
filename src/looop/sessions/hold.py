"""A worker paused whole, and let go on: the one way every caller does it (the spend budget,
the daily budget, the disk bound, `looop worker continue`).

Whole means everything its run started, however that left its process group or session: a
sandboxed worker's agent runs in bubblewrap's new session, so a SIGSTOP of the worker's group
stopped only the outer `bwrap` while the agent went on calling its model. The worker's cgroup
is frozen where it has one (core/limits.freeze); else every process of its tree, found in
/proc, is sent SIGSTOP, children first (SIGCONT to go on) — with what the run orphaned, which
its supervisor (a subreaper where no cgroup holds the run: an SSH host's user, a pod) adopted:
a `setsid` daemon of the worker's is stopped too."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from looop.core import limits, procstat
from looop.sessions.state import Session, SessionError, get_session, run_group

if TYPE_CHECKING:
    from looop.home.store import AnyPath

STOP_WAIT_S = 0.02  # between readings while a stop is still being delivered


def _live(data: AnyPath, wid: str) -> Session | None:
    try:
        sess = get_session(data, wid)
    except SessionError:
        return None
    return sess if sess.alive and sess.child_pid else None


def _roots(child: int) -> list[int]:
    """The run and what it orphaned: the other children of its parent, when that parent is
    its supervisor (named `looop:`; looop's own processes it adopted are spared)."""
    st = procstat.stat_of(child)
    if st is None:
        return [child]
    sup = st[1]
    try:
        with open(f"/proc/{sup}/comm", "rb") as f:
            ours = f.read().startswith(b"looop:")
    except OSError:
        ours = False
    if not ours:
        return [child]
    kids = [p for p in procstat.tree(sup)[1:] if p != child and _parent(p) == sup]
    return [child, *(p for p in kids if procstat.alive_not_looop(p))]


def _parent(pid: int) -> int | None:
    st = procstat.stat_of(pid)
    return st[1] if st is not None else None


def pause(data: AnyPath, wid: str) -> bool:
    """Stop every process of live worker `wid` until `go_on`; whether it was live."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = run_group(sess.dir)
    if group is None or not limits.freeze(group, True):
        _stop_all(sess.child_pid)
    return True


def _stop_all(child: int, rounds: int = 50) -> None:
    """SIGSTOP the run and its orphans until none of them runs: a process re-parented to the
    supervisor while its parent exits mid-pause shows up there only on a later reading."""
    for _ in range(rounds):
        for root in _roots(child):
            procstat.signal_tree(root, signal.SIGSTOP)
        every = [p for root in _roots(child) for p in procstat.tree(root)]
        if all((st := procstat.stat_of(p)) is None or st[0] in "TtZX" for p in every):
            return
        time.sleep(STOP_WAIT_S)


def go_on(data: AnyPath, wid: str) -> bool:
    """Let a paused worker go on, all of it; whether it was live."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = run_group(sess.dir)
    if group is not None:
        limits.freeze(group, False)
    # a tree stopped before its group could be frozen (or by an older looop) goes on too
    for root in _roots(sess.child_pid):
        for pid in procstat.tree(root):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
    return True


def paused(data: AnyPath, wid: str) -> bool:
    """Whether live worker `wid` is paused now: its group frozen, or its first process
    stopped."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = run_group(sess.dir)
    if group is not None and limits.frozen(group):
        return True
    st = procstat.stat_of(sess.child_pid)
    return st is not None and st[0] in ("T", "t")
