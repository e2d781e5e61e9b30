"""What the session host does between requests: serve its home's contract door
(sessions/hostdoor.py) and keep the home's pulse (home/revive.py), then hand back when a
request waits on its listener or it has been idle long enough to ask whether to go."""

from __future__ import annotations

import _socket
import os
import select
import sys
import time

from looop.core.answering import home_env
from looop.home import where
from looop.home.clock import SystemClock
from looop.home.errors import LooopError
from looop.home.revive import REVIVE_EVERY_S, Keeper
from looop.sessions.hostdoor import HostDoor, door_address


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
        self, listener: _socket.socket, door: HostDoor | None, keeper: Keeper | None, idle_s: float
    ) -> None:
        self.listener, self.door, self.keeper = listener, door, keeper
        self.wait_s = min(idle_s, REVIVE_EVERY_S) if keeper is not None else idle_s
        self.waiting = select.poll()
        self.waiting.register(listener.fileno(), select.POLLIN)
        if door is not None:
            self.waiting.register(door.listener.fileno(), select.POLLIN)

    @property
    def busy(self) -> bool:
        """A worker's call is held at the door or its run goes on: the host must stay."""
        return self.door is not None and bool(self.door.held or self.door.runs)

    def tend(self) -> bool:
        """Whether the pulse was brought back just now (its supervisor is forked here next)."""
        if self.keeper is None:
            return False
        try:
            return self.keeper.tend()
        except Exception as e:  # a failed look never ends the host: the next one tries again
            sys.stderr.write(f"looop session host: pulse check failed: {e!r}\n")
            return False

    def next_request(self) -> bool:
        """Wait, serving the door's calls: True when a request waits on the listener, False
        when the wait (or a door's tick) passed first."""
        door = self.door
        wait = door.timeout(self.wait_s) if door is not None else self.wait_s
        ready = {fd for fd, _ in self.waiting.poll(wait * 1000)}
        if door is not None:
            if door.listener.fileno() in ready:
                door.serve_one()
            door.tick()
        return self.listener.fileno() in ready

    def close(self) -> None:
        if self.door is not None:
            self.door.close()
