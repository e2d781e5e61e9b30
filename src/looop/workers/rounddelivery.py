"""A review round's last step: its tell typed into the live worker once it is idle at its
input box, by the beat (`deliver_waiting`) and at once by a send (act/roundsend.py). Apart
from the rounds' records (workers/reviewrounds.py): reading a review types nothing, so it
loads no session client."""

from __future__ import annotations

from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.home.sessionfiles import SessionError, list_light, live
from looop.human.tellbox import take_tell
from looop.sessions.client import send as type_into
from looop.views.workerrows import pending_tells, worker_rows
from looop.workers.reviewrounds import load_rounds, rounds_file, told_id


def _idle(ctx: Ctx, knobs: Knobs, wid: str) -> bool:
    """Idle at its input box, or quiet at a prompt: needs-input's verdict (the last beat's
    look at its screen, or what its supervisor saw it ask)."""
    data = str(ctx.paths.data)
    stuck = knobs.num("worker_stuck_secs")
    rows = worker_rows(data, list_light(data, True, [wid]), ctx.clock, stuck)
    said = rows[0]["needs_input"] if rows else None
    return isinstance(said, str) and said.startswith(("idle", "prompt"))


def deliver(ctx: Ctx, knobs: Knobs, wid: str) -> None:
    """Type the oldest round still waiting in its tell into the live worker once it is idle
    (the next at its next idle: one message a turn). The tell is claimed (moved to consumed/)
    before it is typed: a racing beat or a crash never types it twice; a crash in between
    leaves it read, not typed. A line the session did not take puts it back. Its lines are
    joined into one: no preset takes a multi-line paste."""
    waiting = [t for r in load_rounds(ctx, wid) if (t := told_id(r))]
    tells = ctx.paths.tells
    if not any((tells / f"{t}.json").exists() for t in waiting) or not _idle(ctx, knobs, wid):
        return
    for tid in waiting:
        if (msg := take_tell(tells, wid, tid)) is None:
            continue
        line = " ".join("".join(c for c in msg if c.isprintable() or c.isspace()).split())
        try:
            type_into(str(ctx.paths.data), wid, line + "\r", newline=False)
        except SessionError:
            take_tell(tells, wid, tid, back=True)
            raise
        ctx.events.record("review_typed", id=wid, tell=tid)
        return


def deliver_waiting(ctx: Ctx, knobs: Knobs) -> None:
    """The beat's, after its look at every screen: rounds waiting for an idle worker."""
    data = str(ctx.paths.data)
    for wid in pending_tells(str(ctx.paths.tells)):
        if rounds_file(ctx, wid).exists() and live(data, wid):
            try:
                deliver(ctx, knobs, wid)
            except LooopError as e:
                ctx.events.emit("warn", "review.untyped", f"review for {wid} not typed: {e}")
