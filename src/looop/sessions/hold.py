"""A worker paused whole, and let go on: the one way every caller does it (the spend budget,
the daily budget, the disk bound, `looop worker continue`).

Whole means everything its run started, however that left its process group or session: a
sandboxed worker's agent runs in bubblewrap's new session, so a SIGSTOP of the worker's group
stopped only the outer `bwrap` while the agent went on calling its model. The worker's cgroup
is frozen where it has one (core/limits.freeze); else every process of its tree, found in
/proc, is sent SIGSTOP, children first (SIGCONT to go on)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from looop.core import cgroup, limits, procs
from looop.hot.errors import CorruptState
from looop.hot.wire import read_meta
from looop.sessions.state import Session, SessionError, get_session


def _group(sess: Session) -> cgroup.Group | None:
    """The worker's run group, as its supervisor recorded it (only a `looop` folder's is
    believed: cgroup.adopt)."""
    try:
        meta = read_meta(str(sess.dir))
    except (CorruptState, OSError):
        return None
    path = (meta or {}).get("cgroup")
    if not isinstance(path, str) or not path.endswith("-" + sess.id):
        return None
    return cgroup.adopt(path)


def _live(data: Path | str, wid: str) -> Session | None:
    try:
        sess = get_session(Path(data), wid)
    except SessionError:
        return None
    return sess if sess.alive and sess.child_pid else None


def pause(data: Path | str, wid: str) -> bool:
    """Stop every process of live worker `wid` until `go_on`; whether it was live."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = _group(sess)
    if group is None or not limits.freeze(group, True):
        procs.signal_tree(sess.child_pid, signal.SIGSTOP)
    return True


def go_on(data: Path | str, wid: str) -> bool:
    """Let a paused worker go on, all of it; whether it was live."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = _group(sess)
    if group is not None:
        limits.freeze(group, False)
    # a tree stopped before its group could be frozen (or by an older looop) goes on too
    for pid in procs.tree(sess.child_pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    return True


def paused(data: Path | str, wid: str) -> bool:
    """Whether live worker `wid` is paused now: its group frozen, or its first process
    stopped."""
    sess = _live(data, wid)
    if sess is None or sess.child_pid is None:
        return False
    group = _group(sess)
    if group is not None and limits.frozen(group):
        return True
    st = procs.stat_of(sess.child_pid)
    return st is not None and st[0] in ("T", "t")
