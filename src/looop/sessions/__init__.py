"""looop.sessions: a PTY session manager usable on its own (stdlib + pyte).

One supervisor process per session (`looop.sessions.supervisor`), state on disk under
`root/sessions/<id>/`, a private unix socket for live operations.
"""

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
