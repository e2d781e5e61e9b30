"""Where a worker a move names runs: here, or on a host away (SSH or Kubernetes) — one
lookup (`backend_for`) that every caller reaching a worker asks — and a session's failure
as the move's one line."""

from __future__ import annotations

import math
from collections.abc import Callable

from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import worker_away
from looop.sessions.state import SessionError
from looop.spend.spent import MAX_BUDGET_USD, budgets, clear_over, set_budget
from looop.views import outcomes
from looop.workers.backend import Backend, LocalBackend
from looop.workers.errors import HostUnreachable


def backend_for(ctx: Ctx, wid: str) -> Backend:
    """The one way to a worker, wherever it runs: its host's backend (SSH or Kubernetes),
    else this machine's sessions."""
    away = worker_away(str(ctx.paths.data), ctx.env, ctx.clock, wid, ctx)
    if away is not None:
        return away
    return here(ctx)


def here(ctx: Ctx) -> LocalBackend:
    """This machine's sessions."""
    return LocalBackend(ctx.paths.data, ctx.clock, ctx)


def continue_worker(ctx: Ctx, wid: str, budget: float | None) -> str:
    """`looop worker continue`, every face's: a worker at its budget goes on, with `budget`
    as its new ceiling (None: lifted), all it runs, wherever it runs. The line to show."""
    if budget is not None and not (math.isfinite(budget) and 0 < budget <= MAX_BUDGET_USD):
        raise LooopError(
            f"--budget {budget:g}: give a positive amount in USD, at most "
            f"{MAX_BUDGET_USD:g} (e.g. --budget 5)"
        )
    data = str(ctx.paths.data)
    policy = budgets(data).get(wid, (0.0, "pause"))[1]
    set_budget(data, wid, budget, policy)
    was = clear_over(data, wid)
    ceiling = f"budget ${budget:.2f}" if budget is not None else "no budget"
    try:
        way = backend_for(ctx, wid)
        reach = way.look(wid)  # no worker by that id is said
        went = way.go_on(wid)  # all it runs (its box's inside too), wherever it runs
    except HostUnreachable as e:  # by its kind, whatever engine said it
        raise LooopError(f"worker {wid}: its host did not answer ({e})") from e
    except SessionError as e:
        raise LooopError(f"worker {wid}: {e}") from e
    except LooopError as e:  # anything else an engine raised: its host did not answer
        raise LooopError(f"worker {wid}: its host did not answer ({e})") from e
    if not went and reach != "alive":
        raise LooopError(f"worker {wid}: it no longer runs (its {ceiling} is kept)")
    return f"worker {wid} goes on ({ceiling})" + ("" if was else "; it was not paused")


def sessions_call(what: str, fn: Callable[[], object]) -> None:
    """Session errors (finished, gone, unknown id) become this action's failure, and so does
    a remote worker's host that does not answer (a failed move, never a crashed beat)."""
    try:
        fn()
    except LooopError as e:
        raise ExecError(f"{what}: {e}") from e


def not_stalled(ctx: Ctx, wid: str, verb: str) -> None:
    """The decider restarts no stalled worker (views/outcomes.py): one line, nothing done."""
    try:
        outcomes.refuse_if_stalled(str(ctx.paths.data), wid, verb)
    except LooopError as e:
        raise ExecError(str(e)) from None
