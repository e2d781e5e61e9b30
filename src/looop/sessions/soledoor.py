"""The contract door of a worker whose supervisor was started without the session host (the
spawner's fallback, spawner._spawn_direct): that supervisor serves the host's door
(hostdoor.py) for its one worker, so every local worker's contract verbs knock on a door and
none writes the data dir itself.

The name is abstract and the supervisor's own, `door-<random>` beside the host's (a name no
one can take first: they cannot guess it); LOOOP_DOOR gives it to the worker. The caller is
known as at the host's door: the kernel's pid of the connecting process, whose parents must
lead to this supervisor; any other worker's id is refused (403, one line). A forked
supervisor (the host's) never opens one: the host's door serves its worker."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Protocol

from looop.contract.answering import home_env
from looop.home.anchors import anchor, shown
from looop.home.where import runtime_base
from looop.sessions.hostdoor import TICK_S, HostDoor

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.evloop import Loop
    from looop.sessions.oscalls import HostOS

    class Supervisor(Protocol):
        """What give_door needs of the supervisor (supervisor.Supervisor)."""

        sid: str
        root: str
        host_os: HostOS
        door: SoleDoor | None

        def ready(self, line: str) -> None: ...


class SoleDoor(HostDoor):
    """The host's door, for the one worker `sid` this process supervises; bound by `arm`, in
    the supervisor itself (not in a keeper forked before it, which would hold the name on)."""

    def __init__(
        self,
        address: str,
        home: tuple[str, dict[str, str], tuple[str, ...]],
        clock: Callable[[], float],
        sid: str,
    ) -> None:
        self.unbound = (address, home, clock)
        self.sid = sid
        self.ticking = False

    def named(self) -> str:
        return shown(self.unbound[0])

    def supervisor(self, worker: str) -> int | None:
        return os.getpid() if worker == self.sid else None

    def allowed_for(self, caller: int) -> Callable[[str], str | None]:
        mine = super().allowed_for(caller)

        def allowed(worker: str) -> str | None:
            if worker != self.sid:  # another worker's door is its own supervisor's
                return f"this process is not one of worker {worker}'s: it speaks for itself only"
            return mine(worker)

        return allowed

    def arm(self, loop: Loop) -> None:
        """Bind, and serve calls on the supervisor's loop; held ones looked at each TICK_S
        while any."""
        super().__init__(*self.unbound)

        def serve() -> None:
            self.serve_one()
            later()

        def tick() -> None:
            self.ticking = False
            self.tick()
            later()

        def later() -> None:
            if not self.ticking and (self.held or self.runs):
                self.ticking = True
                loop.call_later(TICK_S, tick)

        loop.add_reader(self.listener.fileno(), serve)


def open_for(
    sid: str, data: str, env: dict[str, str], looop: tuple[str, ...], clock: Callable[[], float]
) -> SoleDoor | None:
    """The door of worker `sid` (data dir `data`), its name put in `env` (the worker's) as
    LOOOP_DOOR; None when `env` is no worker's of this session, or has a door already (a
    sandboxed worker's box has its own)."""
    if not sid or env.get("LOOOP_SESSION_ID") != sid or env.get("LOOOP_DOOR"):
        return None
    address = anchor(runtime_base(env), f"door-{os.urandom(8).hex()}")
    door = SoleDoor(address, (data, home_env(env), looop), clock, sid)
    env["LOOOP_DOOR"] = door.named()
    return door


def give_door(sup: Supervisor, clock: Callable[[], float]) -> bool:
    """A supervisor started as its own interpreter opens its worker's door (None for any
    other session); False, said on its ready line, when it cannot."""
    looop = (sys.executable, "-m", "looop")
    try:
        sup.door = open_for(sup.sid, sup.root, sup.host_os.env, looop, clock)
    except OSError as e:
        sup.ready(f"err cannot open the worker's door: {e}")
        return False
    return True
