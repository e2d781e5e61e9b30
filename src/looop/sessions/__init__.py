"""looop.sessions: a PTY session manager usable on its own (stdlib + pyte).

One supervisor process per session (`looop.sessions.supervisor`), state on disk under
`root/sessions/<id>/`, a private unix socket for live operations.

The public names load on first use (PEP 562), so the supervisor, which starts as
`python -m looop.sessions.supervisor`, does not pay for the client side before its child runs.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing`: the supervisor imports this package first

if TYPE_CHECKING:
    from typing import Any

    from looop.sessions.client import (
        detach,
        expect,
        follow,
        kill,
        live_status,
        log_tail,
        read_log,
        request,
        resize,
        restart,
        screenshot,
        send,
        send_keys,
        spawn,
        wait,
        wait_idle,
    )
    from looop.sessions.state import (
        ID_RE,
        Session,
        SessionError,
        flag,
        get_session,
        list_sessions,
        prune_aged,
        reap,
        unflag,
        validate_id,
        wait_code,
    )

__all__ = [
    "ID_RE",
    "Session",
    "SessionError",
    "detach",
    "expect",
    "flag",
    "follow",
    "get_session",
    "kill",
    "list_sessions",
    "live_status",
    "log_tail",
    "prune_aged",
    "read_log",
    "reap",
    "request",
    "resize",
    "restart",
    "screenshot",
    "send",
    "send_keys",
    "spawn",
    "unflag",
    "validate_id",
    "wait",
    "wait_code",
    "wait_idle",
]
_FROM_STATE = frozenset(
    {
        "ID_RE",
        "Session",
        "SessionError",
        "flag",
        "get_session",
        "list_sessions",
        "prune_aged",
        "reap",
        "unflag",
        "validate_id",
        "wait_code",
    }
)


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "state" if name in _FROM_STATE else "spawner" if name == "spawn" else "client"
        # __import__, not importlib: importlib (and warnings) cost `tell` half a millisecond
        return getattr(__import__(f"looop.sessions.{module}", fromlist=(name,)), name)
    raise AttributeError(f"module 'looop.sessions' has no attribute {name!r}")
