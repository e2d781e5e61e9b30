"""A worker id as the verbs and moves take it: the legacy `looop-` prefix stripped, the pulse
refused, the rest a session id; and the live workers. Apart from the launch so a kill or a
session verb need not load it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.sessions.state import Session, list_sessions, sessions_dir
from looop.sessions.state import validate_id as validate_session_id
from looop.workers.errors import WorkerError

if TYPE_CHECKING:
    from looop.home.store import AnyPath

PULSE = "pulse"


def strip_legacy_prefix(sid: str) -> str:
    """Old prompts spelled worker ids `looop-<id>`."""
    sid = sid.strip()
    return sid[len("looop-") :] if sid.startswith("looop-") else sid


def normalise_target(sid: str) -> str:
    """A worker id as the verbs take it: legacy `looop-` prefix stripped; pulse refused."""
    sid = strip_legacy_prefix(sid)
    if sid == PULSE:
        raise WorkerError(
            "`pulse` is the control loop, not a worker — watch it with "
            "`looop log pulse -f`, stop it with `looop down`"
        )
    return validate_session_id(sid)


def live_workers(data: AnyPath) -> list[Session]:
    """Fail closed: an unreadable fleet is an error on gating paths, never an empty fleet."""
    try:
        return [s for s in list_sessions(data) if s.id != PULSE and s.alive]
    except OSError as e:
        raise WorkerError(f"cannot list sessions in {sessions_dir(data)}: {e.strerror}") from e
