"""A worker on an SSH host has its change read there: its host's satellite reads it with the
same review code (act/landthere.py's `review` verb), and the home adds what is its own — the
comment rounds, the verify it ran, the decider's proposal (workers/review.py, the merge a
pod's review shares). Here, below the moves, so the SSH engine's `Backend.review`
(remote/ssh/backend.py) and `looop review` (act/landfar.py) read it the one way."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.remote.hosts import HostError
from looop.remote.ssh.link import Unreachable, link
from looop.workers.errors import ChangeError
from looop.workers.review import Review, away_review


def call(ctx: Ctx, host: str, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        return link(ctx, host).call(op, req, timeout)
    except Unreachable:
        raise
    except HostError as e:
        if f"unknown satellite verb '{op}'" in str(e):
            raise HostError(
                f"host {host}'s looop is older than this home's and cannot {op} a worker there "
                f"— run `looop host install {host}`"
            ) from None
        raise


def far_review(ctx: Ctx, wid: str, host: str) -> Review:
    """The worker's change as its host reads it, with this home's rounds, verify and
    proposal (workers/review.py)."""

    def ask(req: dict[str, Any]) -> dict[str, Any]:
        return call(ctx, host, "review", req, 60.0)

    try:
        return away_review(ctx, wid, ask, f"host {host}")
    except ChangeError as e:
        raise HostError(str(e)) from None
