"""A worker's change wherever its checkouts are — here, on an SSH host (act/landfar.py), in a
Kubernetes pod (act/landpod.py) — read, commented on, sent back and landed the one way: every
face (`looop review`, `looop land`, the web's review panel, `watch`, MCP) asks `change_of`,
whose worker's Backend picks its own engine's way, never the face."""

from __future__ import annotations

from typing import Any

from looop.act.landfar import OnHost
from looop.act.landlocal import Here
from looop.act.landpod import InPod
from looop.act.moves.far import backend_for
from looop.core.context import Ctx
from looop.home.errors import LooopError


class _Ways:
    """Each engine's way (workers/backend.Ways), for its Backend to take its own."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def here(self, sid: str) -> Here:
        return Here(self.ctx, sid)

    def host(self, sid: str, host: str) -> Here:
        return OnHost(self.ctx, sid, host)

    def pod(self, sid: str, backend: Any) -> Here:
        return InPod(self.ctx, sid, backend)


def change_of(ctx: Ctx, wid: str) -> Here:
    """Worker `wid`'s change where its checkouts are; one whose host is not to be had is
    read as here, whose review says in one line where it works (workers/review.py)."""
    try:
        backend = backend_for(ctx, wid)
    except LooopError:
        return Here(ctx, wid)
    return backend.change(wid, _Ways(ctx))
