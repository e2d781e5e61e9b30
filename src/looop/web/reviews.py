"""GET /api/v1/workers/{id}/review: `looop review ID --json` for the web (workers/review.py),
the one function every face of a review reads."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.web.errors import WebError
from looop.web.reads import session_id
from looop.workers.review import review


def worker_review(ctx: Ctx, sid: str) -> dict[str, Any]:
    """A repo worker's change: commits, files with hunks, verify, summary, comment rounds."""
    sid = session_id(sid)
    if (ctx.paths.data / "hosts" / "workers" / f"{sid}.json").exists():
        raise WebError(409, f"worker {sid} runs on another host — `looop review {sid}` there")
    try:
        return review(ctx, sid).to_json()
    except LooopError as e:
        raise WebError(409, str(e)) from None
