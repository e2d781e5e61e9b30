"""A worker's change wherever its checkouts are — here, on an SSH host (act/landfar.py), in a
Kubernetes pod (the same) — read, commented on, sent back and landed the one way: every
face (`looop review`, `looop land`, the web's review panel, `watch`, MCP) asks `change_of`,
whose worker's Backend picks its own engine's way, never the face."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from looop.act.landlocal import Here
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import worker_away

if TYPE_CHECKING:  # a hint only
    from looop.act.landfar import InPod, OnHost


class _Ways:
    """Each engine's way (workers/backend.Ways), for its Backend to take its own."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def here(self, sid: str) -> Here:
        return Here(self.ctx, sid)

    def host(self, sid: str, host: str) -> Here:
        return _away()[0](self.ctx, sid, host)

    def pod(self, sid: str, backend: Any) -> Here:
        return _away()[1](self.ctx, sid, backend)


def _away() -> tuple[type[OnHost], type[InPod]]:
    # lazy: the SSH and Kubernetes rooms (~40 ms, ~40 modules), for a worker away only
    from looop.act.landfar import InPod, OnHost

    return OnHost, InPod


def change_of(ctx: Ctx, wid: str) -> Here:
    """Worker `wid`'s change where its checkouts are; one whose host is not to be had is
    read as here, whose review says in one line where it works (workers/review.py). A
    worker here is read without its engine (its sessions' client: a read never types)."""
    try:
        away = worker_away(str(ctx.paths.data), ctx.env, ctx.clock, wid, ctx)
    except LooopError:
        away = None
    return Here(ctx, wid) if away is None else away.change(wid, _Ways(ctx))
