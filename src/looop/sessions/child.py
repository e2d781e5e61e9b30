"""One run of a session's command on its own PTY (`Child`) and how it ended: its wait
status, and the signal its end note names (`signal_in_note`). The moves between runs are
lifecycle.py's.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.sessions.evloop import Event

if TYPE_CHECKING:
    from looop.sessions.evloop import Future, Loop
    from looop.sessions.oscalls import Reader


class Child:
    """One run of CMD on its own PTY (a restart makes a new one)."""

    def __init__(self, pid: int, master: int, loop: Loop) -> None:
        self.pid = pid
        self.master = master
        self.exited: Future = loop.future()
        self.eof = Event(loop)
        self.signaled = False
        self.signal: int | None = None  # the signal that ended it
        self.code: int | None = None
        self.escalated = False
        self.pidfd = -1
        self.reader: Reader | None = None

    @property
    def done(self) -> bool:
        return self.exited.done()

    def set_wait_status(self, status: int) -> None:
        if self.exited.done():
            return
        if os.WIFSIGNALED(status):
            self.signaled, self.code = True, None
            self.signal = os.WTERMSIG(status)
        else:
            self.code = os.waitstatus_to_exitcode(status)
        self.exited.set_result(None)


def signal_in_note(path: str, code: int | None) -> int | None:
    """N when the child's end note (a file its program writes: the sandbox's waiter or pty relay)
    says `signal N` and its exit code is the 128+N a wrapper turns that signal into; else
    None. The note is the child's own: read without following a link or blocking, and
    believed only where the code agrees (a child that lies could have died so anyway)."""
    if code is None or not 128 < code < 128 + 65:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, 64)
    except OSError:
        return None
    finally:
        os.close(fd)
    return code - 128 if raw.strip() == f"signal {code - 128}".encode() else None
