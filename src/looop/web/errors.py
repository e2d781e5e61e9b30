"""The one error the web room raises for a request it refuses: an HTTP status and one line;
and the one table that turns why a worker could not be reached (workers/errors.py, whatever
engine runs it) into that status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from looop.home.errors import LooopError
from looop.home.sessionfiles import SessionError
from looop.workers.errors import HostUnreachable, NoSuchWorker, Refused, Unreached, WorkerOver

T = TypeVar("T")


class WebError(Exception):
    def __init__(self, status: int, message: str, more: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said
        self.more = more or {}  # fields beside "error" a page can act on (a land's conflict)


LISTED = "GET /api/v1/sessions?all=1 lists them"
BACK = "it is not taken for dead; try again once the host is back"

# Why a worker could not be reached, first match wins: its status and its line (sid, why).
REACH_CODES: tuple[tuple[type[BaseException], int, Callable[[str, str], str]], ...] = (
    (NoSuchWorker, 404, lambda sid, why: f"no worker '{sid}' — {LISTED}"),
    (WorkerOver, 409, lambda sid, why: why),
    (HostUnreachable, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
    (Refused, 409, lambda sid, why: why),
    (SessionError, 409, lambda sid, why: why),  # any other refusal the session said
    # anything else an engine raised is its host not answering, never a 500
    (LooopError, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
    (OSError, 503, lambda sid, why: f"worker {sid} is unreachable: {why} — {BACK}"),
)


def unreached(sid: str, e: BaseException) -> WebError:
    """`e`, raised reaching worker `sid`, as the request's answer (REACH_CODES)."""
    for kind, status, say in REACH_CODES:
        if isinstance(e, kind):
            return WebError(status, say(sid, str(e)))
    raise e


def refused(sid: str, e: LooopError) -> WebError:
    """A worker's action refused: not reached, by its kind (REACH_CODES); any other refusal
    is the state's, 409."""
    return unreached(sid, e) if isinstance(e, Unreached) else WebError(409, str(e))


def reaching(sid: str, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on worker `sid`'s backend, what stops it answered by REACH_CODES."""
    try:
        return fn(*args)
    except (LooopError, OSError) as e:
        raise unreached(sid, e) from None
