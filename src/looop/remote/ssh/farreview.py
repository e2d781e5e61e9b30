"""A worker on an SSH host has its change read there: its host's satellite reads it with the
same review code (act/landthere.py's `review` verb), and the home adds what is its own — the
comment rounds, the verify it ran, the decider's proposal. Here, below the moves, so the SSH
engine's `Backend.review` (remote/ssh/backend.py) and `looop review` (act/landfar.py) read it
the one way."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from looop.core.context import Ctx
from looop.remote.hosts import HostError
from looop.remote.ssh.link import Unreachable, link
from looop.workers import landask
from looop.workers.review import Review, verify_of
from looop.workers.reviewjson import BadReview, commits_of, review_from_json
from looop.workers.reviewrounds import load_rounds


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
    proposal."""
    rounds = load_rounds(ctx, wid)
    sent = [r for r in rounds if r.sent]
    got = call(ctx, host, "review", {"id": wid, "since": sent[-1].tip if sent else ""}, 60.0)
    try:
        r = review_from_json(got.get("review"))
        since = got.get("since") or []
        after = commits_of(since if isinstance(since, list) else [])
    except (BadReview, AttributeError) as e:
        raise HostError(f"host {host} answered a review this home cannot read: {e}") from None
    verify = verify_of(ctx, wid)
    return replace(
        r,
        wid=wid,
        verify=verify if verify.state != "none" else r.verify,
        rounds=tuple(rounds),
        since_last=after if sent and sent[-1].tip != r.tip else (),
        proposal=landask.pending(ctx, wid),
    )
