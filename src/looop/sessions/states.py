"""A session's states and the one place they change.

The values are exactly the `state` strings in `status.json`, so readers (state.py, the CLI,
the pulse's probe) compare with plain strings and the on-disk format stays as it was. The
supervisor changes state only through `StatusBook.change_state`, which refuses a transition
the table does not allow, stamps `last_change`, writes the file and tells its listeners.
"""

from __future__ import annotations

from enum import StrEnum  # `re` imports enum already: no cost on the fast path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class SessionState(StrEnum):
    STARTING = "starting"  # the supervisor runs; its child is not spawned yet
    RUNNING = "running"  # a child runs on the PTY
    EXITED = "exited"  # the child ended on its own (or never started)
    KILLED = "killed"  # the child was killed (a kill op, a timeout, a signal)


LIVE = frozenset({SessionState.STARTING, SessionState.RUNNING})
TERMINAL = frozenset({SessionState.EXITED, SessionState.KILLED})

# The tables over the plain strings: the book looks states up here, so a forked supervisor
# never runs enum's own machinery (`SessionState(x)`, `.value`) on its path. RUNNING → RUNNING
# is a restart: a new child, a new run. Nothing leaves a terminal state.
_BY_VALUE: dict[str, SessionState] = {s._value_: s for s in SessionState}
_ENDS = frozenset(s._value_ for s in TERMINAL)
_ALLOWED = {v: frozenset() if v in _ENDS else _ENDS | {"running"} for v in _BY_VALUE}
_LIVE_VALUES = frozenset(s._value_ for s in LIVE)


class IllegalTransition(RuntimeError):
    """A bug in the supervisor: a state change the table forbids (never a user's mistake)."""


class StatusBook:
    """The session's `status.json` as one dict, written whole on every change.

    `write` persists a copy (the caller decides what a failed write means), `stamp` gives
    the UTC time for `last_change`; listeners get (old, new, status) after each transition.
    """

    def __init__(
        self,
        write: Callable[[dict[str, Any]], None],
        stamp: Callable[[], str],
        cols: int,
        rows: int,
    ) -> None:
        self._write = write
        self._stamp = stamp
        self.listeners: list[Callable[[SessionState, SessionState, dict[str, Any]], None]] = []
        self.status: dict[str, Any] = {
            "v": 1,
            "state": "starting",  # SessionState.STARTING
            "child_pid": None,
            "exit_code": None,
            "signaled": False,
            "last_change": stamp(),
            "cols": cols,
            "rows": rows,
            "error": None,
        }

    @property
    def state(self) -> SessionState:
        return _BY_VALUE[self.status["state"]]

    @property
    def live(self) -> bool:
        return self.status["state"] in _LIVE_VALUES

    def change_state(self, new: SessionState, **fields: Any) -> None:
        """Move to `new` with `fields`; IllegalTransition (and nothing written) if forbidden."""
        old_value, new_value = self.status["state"], new._value_
        if new_value not in _ALLOWED[old_value]:
            raise IllegalTransition(f"session state {old_value} → {new_value} is not allowed")
        old = _BY_VALUE[old_value]
        self.status.update(fields)
        self.status["state"] = new_value
        self.status["last_change"] = self._stamp()
        self._write(dict(self.status))
        for listener in tuple(self.listeners):
            listener(old, new, dict(self.status))

    def update(self, **fields: Any) -> None:
        """Change fields that are not a transition (the size): no stamp, no listeners."""
        if "state" in fields:
            raise IllegalTransition("the state changes only through change_state")
        self.status.update(fields)
        self._write(dict(self.status))

    def save(self) -> None:
        """Write the current status as it is (the first write, before any transition)."""
        self._write(dict(self.status))
