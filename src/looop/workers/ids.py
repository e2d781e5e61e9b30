"""A worker id as the verbs and moves take it: the legacy `looop-` prefix stripped, the pulse
refused, the rest a session id. Apart from the launch so a kill need not load it."""

from __future__ import annotations

from looop.sessions.state import validate_id as validate_session_id
from looop.workers.errors import WorkerError

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
