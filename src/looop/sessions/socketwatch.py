"""The supervisor's watch on its control socket's name: the kernel tells it (dnotify, F_NOTIFY
on the socket's folder: a SIGIO on the loop) when a name there is removed or renamed (a tmp
cleaner, a wiped runtime dir), so it binds again soon and an idle supervisor never wakes to
look. dnotify is the stdlib's (fcntl): no ctypes binding paged into every supervisor. Where
the folder cannot be watched, a slow look (`RESYNC_S`) is the fallback."""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Callable

from looop.sessions.control import Control
from looop.sessions.evloop import Loop
from looop.sessions.pump import log

RESYNC_S = 30.0  # the look when the folder cannot be watched
SETTLE_S = 0.3  # a cleaner's rm -rf ends first: a name made in its folder would stop its rmdir
_GONE = fcntl.DN_DELETE | fcntl.DN_RENAME | fcntl.DN_MULTISHOT


class SocketWatch:
    """Binds the control socket again when its name goes: told by the kernel, else on a timer."""

    def __init__(self, loop: Loop, control: Control, live: Callable[[], bool]) -> None:
        self.loop, self.control = loop, control
        self.live = live  # False once the session is finishing: no more binding
        self.folder_fd = -1  # the watched folder (its notices come as SIGIO)
        self.pending = False  # a look is scheduled (the settle, or the slow fallback)

    def start(self) -> None:
        self.loop.add_signal_handler(signal.SIGIO, self.on_change)  # before the first notice
        self.arm()

    def arm(self) -> None:
        """Watch the socket's folder anew (it may be a new folder); the slow look if not."""
        self.unwatch()
        path = self.control.sock_path
        if path is not None:
            try:
                self.folder_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
                fcntl.fcntl(self.folder_fd, fcntl.F_NOTIFY, _GONE)
                return
            except OSError as e:  # folder gone again, or no dnotify here
                self.unwatch()
                log(f"control socket not watched ({e.strerror or e}): a look every {RESYNC_S:g}s")
        self.look_after(RESYNC_S)

    def look_after(self, delay: float) -> None:
        if not self.pending:
            self.pending = True
            self.loop.call_later(delay, self.look)

    def on_change(self) -> None:
        """A name in the folder was removed or renamed (maybe a neighbour's: the look says)."""
        if self.folder_fd >= 0:
            self.look_after(SETTLE_S)

    def look(self) -> None:
        self.pending = False
        if not self.live():
            return
        if self.control.rebind_if_gone() or self.folder_fd < 0:
            self.arm()  # the new folder (a wipe made a new one), or the fallback's next look

    def unwatch(self) -> None:
        if self.folder_fd >= 0:
            os.close(self.folder_fd)  # the last close ends the notices
            self.folder_fd = -1

    def close(self) -> None:
        """Its notices end (before the loop's SIGIO disposition is gone, none must come)."""
        self.unwatch()
