"""A worker's change where its checkouts are here, and the refusal every engine's landing
says the same way (act/landaway.py picks the engine; act/landfar.py and act/landpod.py
override Here away)."""

from __future__ import annotations

from typing import Any

from looop.act.landing import Approved, LandConflict, Landed, LandError, NothingToLand, land
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.workers import reviewsend
from looop.workers.review import Review, review, worker_tree
from looop.workers.reviewrounds import Round


class Here:
    """Worker `wid`'s change where its checkouts are here: read, commented on, its round sent
    back and landed, as every face asks it (its Backend picks this: act/landaway.py); an
    engine away overrides each (act/landfar.py, act/landpod.py)."""

    def __init__(self, ctx: Ctx, wid: str) -> None:
        self.ctx, self.wid = ctx, wid

    def review(self) -> Review:
        return review(self.ctx, self.wid)

    def has_change(self) -> None:
        """Nothing when the worker has a change to comment on; else its one line. Away, its
        host or pod says so when asked."""
        worker_tree(self.ctx, self.wid)

    def comment(self, on_lines: list[tuple[str, str]], on_all: list[str]) -> Round:
        return reviewsend.add_comments(self.ctx, self.wid, on_lines, on_all)

    def send(self, knobs: Knobs) -> Round:
        return reviewsend.send(self.ctx, knobs, self.wid)

    def land(
        self,
        knobs: Knobs,
        mode: str | None,
        into: str | None,
        actor: str,
        repo: str | None = None,
        *,
        at: Approved,
    ) -> Landed:
        """Landed at the tips the human approved (`at`), never later."""
        return land(self.ctx, knobs, self.wid, mode, into, actor, repo, at=at)


def refusal(e: LooopError) -> dict[str, Any]:
    """A landing refused, as a host or a pod answers it (raised again home: `refused_as`)."""
    if isinstance(e, LandConflict):
        return {"refused": str(e), "kind": "conflict", "comment": e.comment}
    return {"refused": str(e), "kind": "nothing" if isinstance(e, NothingToLand) else "land"}


def refused_as(got: dict[str, Any], where: str) -> None:
    """A host's or a pod's refusal (`refusal`) raised here as its kind, `where` said first."""
    said = got.get("refused")
    if not isinstance(said, str):
        return
    if got.get("kind") == "conflict":
        raise LandConflict(where + said, str(got.get("comment", "")))
    raise (NothingToLand if got.get("kind") == "nothing" else LandError)(where + said)
