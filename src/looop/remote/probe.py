"""sys-sessions with hosts (SSH or Kubernetes): the remote workers' rows (`unreachable` for a
silent host) and each place's load (live workers / cap, and whether it answered), so the
decider sees where there is room."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.remote import hosts as reg
from looop.remote.engine import remote_rows
from looop.remote.hosts import LOCAL
from looop.remote.place import loads
from looop.views.workerrows import waiting_workers


def with_hosts(
    ctx: Ctx, rows: list[dict[str, Any]], stuck: int, knobs: Knobs | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = ctx.paths.data
    if not reg.names(data):
        return rows, []
    waiting = waiting_workers(str(ctx.paths.asks), str(ctx.paths.answers))
    far = remote_rows(data, ctx.clock, stuck, waiting, dict(ctx.env), ctx.bin, look=True)
    cap = (knobs if knobs is not None else ctx.knobs()).num("max_workers")
    local_live = sum(1 for r in rows if r["alive"])
    silent = {r["host"] for r in far if r["health"] == "unreachable"}
    hosts = [{"name": LOCAL, "workers": local_live, "cap": cap, "reachable": True}]
    hosts += [
        {
            "name": h.name,
            "kind": h.kind,
            "workers": n,
            "cap": h.cap,
            "reachable": h.name not in silent,
        }
        for h, n in loads(data)
    ]
    for r in far:  # the fields fleet_view's rows carry that remote rows lack
        r.setdefault("note", None)
    return sorted(rows + far, key=lambda r: str(r["id"])), hosts
