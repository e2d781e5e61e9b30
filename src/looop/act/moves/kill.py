"""The move that ends a worker: kill_worker, here or on its host, level-triggered (a worker
already over is a success that says what was found)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from looop.act.decision import Mover, Reasoned
from looop.act.moves import far
from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home import store, where
from looop.home.errors import CorruptState, LooopError
from looop.human.mailbox import AskError, drop_pending
from looop.sessions.state import SessionError, get_session, session_dir
from looop.spend.usagewindows import unhold
from looop.views import outcomes
from looop.workers.ids import normalise_target
from looop.workers.treerecord import cleared


@dataclass(frozen=True)
class KillWorker(Reasoned):
    tag = "kill_worker"
    kind = "kill"
    teach = r"""kill_worker{id,reason} - stop a worker whose health is stuck (never one waiting on an ask);
come back with next_interval_s.
  {"action":"kill_worker","id":"release-2-1","reason":"no output for 40 minutes"}"""  # noqa: E501

    head = "kill-worker"

    def perform(self, by: Mover) -> str | None:
        """Moves are level-triggered: a worker that is already over (it exited, was killed,
        or its supervisor died) is a success that journals what was found; an unknown id
        fails."""
        ctx = by.ctx
        wid = normalise_target(self.id)
        if unhold(str(ctx.paths.data), wid) and not os.path.exists(
            session_dir(ctx.paths.data, wid)
        ):
            return "its start held for a usage window was dropped"
        _asked(ctx, wid, "decider" if by.decided else "human")
        way = far.backend_for(ctx, wid)
        try:
            left = way.kill(wid).get("survivors")
        except SessionError as e:
            found = way.found_over(wid, e)  # level-triggered: an ended worker is a success
            if found is None:
                raise ExecError(f"kill_worker: {e}") from e
            cleared(ctx, wid)
            return _unasked(ctx, wid, found)
        except LooopError as e:  # its host does not answer: a failed move, not a crash
            raise ExecError(f"kill_worker: {e}") from e
        cleared(ctx, wid)  # its box's FIFOs no longer hang the user's git
        if left:  # honest: killed, yet something it started outlived SIGKILL
            raise ExecError(f"kill_worker: {wid} was killed but {left} of its processes survived")
        return _unasked(ctx, wid, None)


def _unasked(ctx: Ctx, wid: str, said: str | None) -> str | None:
    """A killed worker's pending asks leave the needs-you queue (archived): no one is left to
    read their answers."""
    try:
        n = drop_pending(ctx.paths.asks, ctx.paths.answers, wid)
        news = f"its {n} pending ask{'s' if n > 1 else ''} archived" if n else ""
    except AskError as e:  # killed all the same: the asks stay, said
        news = f"its asks stay pending: {e}"
    return "; ".join(x for x in (said, news) if x) or None


def _asked(ctx: Ctx, wid: str, who: str) -> None:
    """A kill asked for is a choice, not a failure: its outcome says so (views/outcomes.py).
    A worker away from home: its generation is the home's record's start (loop/ended.py)."""
    try:
        away = store.read_json_object(where.host_record(str(ctx.paths.data), wid))
        if away is not None:
            gen = str(away.get("started_at") or "")
        else:
            gen = get_session(ctx.paths.data, wid).started_at
        outcomes.mark_kill(str(ctx.paths.data), wid, gen, who)
    except (SessionError, OSError, CorruptState):
        pass  # no session to kill (said below), or the mark unwritten: it reads as a failure
