"""Where a worker's session runs: one interface, several engines.

The pulse stays on one machine; a worker's session may run here (the PTY supervisor of
`sessions/`), on another host over SSH, or in a Kubernetes Job. Every session verb reaches a
worker through this interface, so `ls`, `shot`, `log`, `send`, `key`, `wait`, `kill`, a
pause and its going on, and the web view read the same for each. `LocalBackend` is the
first engine: a thin face over `sessions/client`, `sessions/state` and `sessions/hold`.

`reach` is three-valued on purpose: a host that dropped off the network is not a dead worker
(`unreachable`), and nothing is reaped or re-run on its account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from looop.home.clock import Clock
from looop.home.logs import read_log
from looop.sessions import client, hold
from looop.sessions.state import Session, SessionError, get_session, wait_code

Reach = Literal["alive", "over", "unreachable"]


class StartSpec:
    """What a backend needs to start one worker session."""

    __slots__ = ("argv", "cwd", "env", "sid", "size")

    def __init__(
        self,
        sid: str,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        size: tuple[int, int] = (80, 24),
    ) -> None:
        self.sid = sid
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.size = size


class Backend(Protocol):
    """One engine that runs worker sessions. Errors a user can cause are `SessionError`
    (one line); a backend never raises for a session that is merely over."""

    kind: str  # "local", "ssh", "kubernetes"

    def start(self, spec: StartSpec) -> Session: ...

    def reach(self, sid: str) -> Reach: ...

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]: ...

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]: ...

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]: ...

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]: ...

    def wait(self, sid: str, timeout_s: float | None) -> int: ...

    def kill(self, sid: str) -> dict[str, Any]: ...

    def restart(self, sid: str) -> dict[str, Any]: ...

    def exit_status(self, sid: str) -> int | None: ...

    def pause(self, sid: str) -> bool:
        """Freeze everything the worker runs until `go_on`; whether it was live. An engine
        that cannot freeze a worker refuses in one line (SessionError)."""
        ...

    def go_on(self, sid: str) -> bool:
        """Let a paused worker go on, all of it; whether it was live."""
        ...


class LocalBackend:
    """Sessions on this machine: the PTY supervisors under `<data>/sessions/`."""

    kind = "local"

    def __init__(self, root: Path, clock: Clock, host_idle_s: float | Callable[[], float]) -> None:
        self.root = root
        self.clock = clock
        # a callable: read when a start asks, so a verb that only types in reads no config
        self.host_idle_s = host_idle_s

    def start(self, spec: StartSpec) -> Session:
        idle = self.host_idle_s
        return client.spawn(
            self.root,
            spec.sid,
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            size=spec.size,
            host_idle_s=idle() if callable(idle) else idle,
        )

    def reach(self, sid: str) -> Reach:
        try:
            s = get_session(self.root, sid)
        except SessionError:
            return "over"
        return "alive" if s.alive else "over"

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        return client.screenshot(self.root, sid, fmt, trim)

    def log(self, sid: str, since: int = 0, raw: bool = False) -> tuple[str, int]:
        return read_log(self.root, sid, since, raw)

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        return client.send(self.root, sid, text, newline)

    def key(self, sid: str, names: Sequence[str]) -> dict[str, Any]:
        return client.send_keys(self.root, sid, names)

    def wait(self, sid: str, timeout_s: float | None) -> int:
        return client.wait(self.root, sid, timeout_s, self.clock)

    def kill(self, sid: str) -> dict[str, Any]:
        return client.kill(self.root, sid)

    def restart(self, sid: str) -> dict[str, Any]:
        return client.restart(self.root, sid)

    def exit_status(self, sid: str) -> int | None:
        return wait_code(get_session(self.root, sid))

    def pause(self, sid: str) -> bool:
        return hold.pause(self.root, sid)  # the whole run, its box's inside too

    def go_on(self, sid: str) -> bool:
        return hold.go_on(self.root, sid)
