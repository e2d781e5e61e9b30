"""The only place a decision touches the world: one action, WAL-guarded, then one journal line.

Every actor (the pulse, a CLI steering verb) goes through `execute`, so a move made by hand is
validated, crash-guarded, stamped and journaled exactly like one the runner asked for.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from looop.act.decision import Action, Decision, Mover
from looop.act.journal import append_journal, sanitise_journal, stamp_goal_activity
from looop.act.outcome import ExecError, Executed
from looop.core.context import Ctx
from looop.home import store
from looop.home.config import Config, Knobs
from looop.home.errors import WRITABLE_FIX
from looop.home.sessionfiles import remove_tree

# Reading stops here; parse_decision rejects anything over its own (much smaller) limit.
_DECISION_READ_CAP = 16 * 1024 * 1024


def take_decision(ctx: Ctx, path: Path | None = None) -> bytes | None:
    """Read the decision file (`path`, Paths.decision_file; the data dir's by default) and
    delete it at once: a decision is executed at most once.

    Only a regular file is a decision: a FIFO (which would block the beat forever), a device, a
    socket, a symlink or a directory in its place is discarded with one line, and the next
    beat starts clean."""
    path = ctx.paths.decision if path is None else path
    try:
        raw = store.read_regular(path, _DECISION_READ_CAP, follow=False)
    except FileNotFoundError:
        return None
    except OSError as e:
        discard_decision(path)
        raise ExecError(
            f"cannot read {path.name}: {e.strerror}; it was discarded — write one JSON file"
        ) from e
    discard_decision(path)
    return raw


def discard_decision(path: Path) -> bool:
    """Remove whatever stands at the decision path (a directory too); True when something did."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        pass
    except OSError:
        return False
    remove_tree(os.fspath(path))  # never follows links inside it
    return not os.path.lexists(path)


def _os_error(ctx: Ctx, e: OSError) -> str:
    why = e.strerror or str(e)
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and not os.access(
        ctx.paths.data, os.W_OK
    ):
        # not the temp file it failed on: the folder and what to do (as `up` says it)
        return f"cannot write the data dir {ctx.paths.data} ({why}) — {WRITABLE_FIX}"
    if e.filename:
        return f"{why}: {ctx.paths.rel(Path(os.fsdecode(e.filename)))}"
    return why


def execute(
    ctx: Ctx,
    knobs: Knobs,
    decision: Decision,
    *,
    actor: str = "pulse",
    allow_dangerous: bool = False,
    cfg: Config | None = None,
) -> Executed:
    """Run the one action, stamp its goal, journal it. ExecError (nothing journaled) on failure.

    allow_dangerous skips the shell tripwire (run_shell, a worker's command/verify, a sensor);
    only a human's `looop run --allow-dangerous` sets it, never a decision. cfg: the beat's
    config, so the move runs under the config the beat read (None reads the file now).
    """
    action: Action = decision.action
    kind, summary = action.kind, action.summary()
    try:
        # the move itself; only once it returned is anything stamped or journaled
        found = action.perform(Mover(ctx, knobs, actor, allow_dangerous, cfg))
    except OSError as e:
        raise ExecError(f"{action.tag}: {_os_error(ctx, e)}") from e
    goal = action.goal()
    if goal is not None:
        stamp_goal_activity(ctx, goal)
    text = sanitise_journal(decision.journal or "") or summary
    if found:
        summary = f"{summary} ({found})"
        text = sanitise_journal(f"{text} ({found})")
    try:
        journal = append_journal(ctx, knobs, text)
    except ExecError as e:
        raise ExecError(
            f"{kind} ran, but its journal line could not be written ({e}); "
            "do not repeat it — add the line by hand if it matters"
        ) from e
    if actor != "pulse":
        ctx.events.record("steered", actor=actor, action=kind, summary=summary)
    return Executed(
        kind=kind,
        summary=summary,
        journal=journal,
        next_interval_s=decision.next_interval_s,
        goal=goal,
    )
