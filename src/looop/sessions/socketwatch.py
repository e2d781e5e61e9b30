"""The supervisor's watch on its control socket's name: the kernel's inotify tells it when
the name or its folder is removed (a tmp cleaner, a wiped runtime dir), so it binds again
soon and an idle supervisor never wakes to look. Where inotify is missing or out of
instances or watches, a slow look (`RESYNC_S`) is the fallback."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable

import inotify_simple
from inotify_simple import INotify, flags

from looop.sessions.control import Control
from looop.sessions.evloop import Loop
from looop.sessions.pump import log

RESYNC_S = 30.0  # the look with no inotify to tell
SETTLE_S = 0.3  # a cleaner's rm -rf ends first: a name made in its folder would stop its rmdir
_GONE = flags.DELETE | flags.MOVED_FROM | flags.DELETE_SELF | flags.MOVE_SELF


class SocketWatch:
    """Binds the control socket again when its name goes: told by inotify, else on a timer."""

    def __init__(self, loop: Loop, control: Control, live: Callable[[], bool]) -> None:
        self.loop, self.control = loop, control
        self.live = live  # False once the session is finishing: no more binding
        self.ino: INotify | None = None
        self.pending = False  # a look is scheduled (the settle, or the slow fallback)

    def start(self) -> None:
        if inotify_simple._libc is None:  # its own lookup runs `ldconfig -p`: no child here
            inotify_simple._libc = ctypes.CDLL(None, use_errno=True)
        with contextlib.suppress(OSError):  # no inotify here: the slow look alone
            self.ino = INotify(nonblocking=True)
            self.loop.add_reader(self.ino.fileno(), self.on_change)
        self.arm()

    def arm(self) -> None:
        """Watch the socket's folder anew (it may be a new folder); the slow look if not."""
        path, ino = self.control.sock_path, self.ino
        if ino is not None and path is not None:
            try:
                ino.add_watch(os.path.dirname(path), _GONE)
                return
            except OSError as e:  # folder gone again, or out of watches
                log(f"control socket not watched ({e.strerror or e}): a look every {RESYNC_S:g}s")
        self.look_after(RESYNC_S)

    def look_after(self, delay: float) -> None:
        if not self.pending:
            self.pending = True
            self.loop.call_later(delay, self.look)

    def on_change(self) -> None:
        ino = self.ino
        if ino is None:
            return
        try:
            events = ino.read(timeout=0)
        except OSError:
            events = []
        name = os.path.basename(self.control.sock_path or "")
        for ev in events:
            folder_gone = ev.mask & (flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED)
            if folder_gone or ev.mask & flags.Q_OVERFLOW or ev.name == name:
                self.look_after(SETTLE_S)
                return

    def look(self) -> None:
        self.pending = False
        if not self.live():
            return
        self.control.rebind_if_gone()
        self.arm()  # the same folder again is the same watch: no second one

    def close(self) -> None:
        if self.ino is not None:
            self.loop.remove_reader(self.ino.fileno())
            self.ino.close()
            self.ino = None
