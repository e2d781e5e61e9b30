"""The fleet with the workers away from home: views/fleet.py's rows, each host asked once
(remote/engine.py: SSH hosts and Kubernetes namespaces), for `ls`, `worker list`, the web and
`looop watch`. Light itself: the remote wing loads only for a home with workers away."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import where
from looop.remote import rooms
from looop.views.fleet import fleet_rows_at
from looop.views.workerrows import waiting_workers

if TYPE_CHECKING:
    from typing import Any

    from looop.core.context import Ctx
    from looop.home.clock import Clock
    from looop.home.sessionfiles import Listing


def remote_rows(
    data: str, clock: Clock, stuck_secs: int, env: dict[str, str] | None
) -> list[dict[str, Any]]:
    """The workers on other hosts, in fleet_rows_at's shape (views/fleet.py, `looop ls`), the
    workers waiting on an ask read here."""
    waiting = waiting_workers(where.join(data, where.ASKS), where.join(data, where.ANSWERS))
    return rooms().remote_rows(data, clock, stuck_secs, waiting, env)


def fleet_rows(ctx: Ctx, all_sessions: bool, light: Listing | None = None) -> list[dict[str, Any]]:
    """The pulse and the workers with health, ages and state, as `looop worker list` shows them
    (`light`: the home's listing when the caller read it, views/fleet.fleet_rows_at)."""
    data = os.fspath(ctx.paths.data)
    stuck = ctx.knobs().num("worker_stuck_secs")
    return fleet_rows_at(data, ctx.clock, stuck, all_sessions, dict(ctx.env), remote_rows, light)


def far_rows(ctx: Ctx) -> list[dict[str, Any]]:
    """The workers away from home alone, in fleet_rows' shape: for a reader that lists the
    home's own itself (`looop watch`, off its UI thread: a silent host costs seconds)."""
    data = os.fspath(ctx.paths.data)
    stuck = ctx.knobs().num("worker_stuck_secs")
    if not os.path.isdir(os.path.join(data, where.HOSTS, where.HOST_WORKERS)):
        return []
    rows = remote_rows(data, ctx.clock, stuck, dict(ctx.env))
    return sorted(rows, key=lambda r: str(r["id"]))
