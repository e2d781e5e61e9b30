"""What the session host does between requests: serve its home's contract door
(sessions/hostdoor.py) and keep the home's pulse (home/revive.py), then hand back when a
request waits on its listener or it has been idle long enough to ask whether to go.
The pulse is kept without a poll: the host holds a pidfd of the pulse's supervisor, whose
exit wakes it at once; it looks every REVIVE_EVERY_S only while the pulse is wanted and no
supervisor runs it (a revival backing off), and every RESYNC_S otherwise."""

from __future__ import annotations

import os
import select
import socket
import sys
import time

from looop.contract.answering import home_env
from looop.home import where
from looop.home.clock import SystemClock
from looop.home.errors import LooopError
from looop.home.revive import REVIVE_EVERY_S, Keeper, pulse_supervisor, read_wanted
from looop.sessions.hostdoor import HostDoor, door_address

RESYNC_S = 30.0  # a look at the pulse with nothing to tell (no pidfd, or none wanted)


def open_door(base: str, key: str, home: str) -> HostDoor | None:
    """The contract door of the home's local workers; None, said, when its name is taken
    (a host of this key serving it already exits soon)."""
    looop = (sys.executable, "-m", "looop")  # this build's, whatever LOOOP_BIN names
    try:
        return HostDoor(door_address(base, key), (home, home_env(os.environ), looop), time.time)
    except OSError as e:
        sys.stderr.write(f"looop session host: no door for its workers: {e}\n")
        return None


def pulse_keeper(home: str) -> Keeper | None:
    """The host outlives the supervisors it forks: when the pulse's dies (an OOM kill, a
    stray kill -9) while `up` still wants it, the host brings it back, with no verb needed.
    Its environment is its home's (see sessions/host.py's docstring)."""
    if not home.startswith("/"):
        return None
    env = dict(os.environ)
    try:
        _, config = where.resolve({**env, "LOOOP_DATA_DIR": home}, "/")
    except LooopError:
        return None
    return Keeper(home, config, env, SystemClock(), REVIVE_EVERY_S)


class Duties:
    """The host's wait for its next request, with its door and its pulse kept meanwhile."""

    def __init__(
        self, listener: socket.socket, door: HostDoor | None, keeper: Keeper | None, idle_s: float
    ) -> None:
        self.listener, self.door, self.keeper = listener, door, keeper
        self.idle_s = self.wait_s = idle_s
        self.pulse_fd: int | None = None  # a pidfd of the pulse's supervisor: its exit wakes
        os.register_at_fork(after_in_child=self.let_go)  # a forked supervisor holds none
        self.waiting = select.poll()
        self.waiting.register(listener.fileno(), select.POLLIN)
        if door is not None:
            self.waiting.register(door.listener.fileno(), select.POLLIN)
            door.waiting = self.waiting

    @property
    def busy(self) -> bool:
        """A worker's call is held at the door or its run goes on: the host must stay."""
        return self.door is not None and bool(self.door.held or self.door.runs)

    def tend(self) -> bool:
        """Whether the pulse was brought back just now (its supervisor is forked here next)."""
        if self.keeper is None:
            return False
        try:
            started = self.keeper.tend()
            self.follow(self.keeper)
            return started
        except Exception as e:  # a failed look never ends the host: the next one tries again
            sys.stderr.write(f"looop session host: pulse check failed: {e!r}\n")
            self.wait_s = min(self.idle_s, REVIVE_EVERY_S)
            return False

    def follow(self, keeper: Keeper) -> None:
        """Hold a pidfd of the pulse's supervisor, and say how long to wait until the next look."""
        if self.pulse_fd is None:
            pid = pulse_supervisor(keeper.data)
            if pid is not None:
                try:
                    fd = os.pidfd_open(pid)
                except OSError:  # gone already (looked at next), or no pidfd on this kernel
                    fd = None
                if fd is not None and pulse_supervisor(keeper.data) != pid:
                    os.close(fd)  # it ended between the two reads: not a stranger's pid
                    fd = None
                if fd is not None:
                    self.pulse_fd = fd
                    self.waiting.register(fd, select.POLLIN)
        if self.pulse_fd is not None or read_wanted(keeper.data) is None:
            self.wait_s = min(self.idle_s, RESYNC_S)
        else:  # wanted, and nothing to tell of a loss: look again soon (a revival backing off)
            self.wait_s = min(self.idle_s, REVIVE_EVERY_S)

    def let_go(self) -> None:
        if self.door is not None:
            self.door.forget_runs()
        if self.pulse_fd is not None:
            os.close(self.pulse_fd)
            self.pulse_fd = None

    def pulse_ended(self) -> None:
        """The pulse's supervisor exited: drop its pidfd and look now."""
        if self.pulse_fd is not None:
            self.waiting.unregister(self.pulse_fd)
            os.close(self.pulse_fd)
            self.pulse_fd = None
        if self.keeper is not None:
            self.keeper.checked = None

    def next_request(self) -> bool:
        """Wait, serving the door's calls: True when a request waits on the listener, False
        when the wait (or a door's tick) passed first."""
        door = self.door
        wait = door.timeout(self.wait_s) if door is not None else self.wait_s
        ready = {fd for fd, _ in self.waiting.poll(wait * 1000)}
        if self.pulse_fd is not None and self.pulse_fd in ready:
            self.pulse_ended()
        if door is not None:
            if door.listener.fileno() in ready:
                door.serve_one()
            door.tick()
        return self.listener.fileno() in ready

    def close(self) -> None:
        self.pulse_ended()
        if self.door is not None:
            self.door.close()
