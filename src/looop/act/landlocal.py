"""A worker's change where its checkouts are here, what every engine away shares (`Away`:
its comments, the answers read back) and the refusal every engine's landing says the same
way (act/landaway.py picks the engine; act/landfar.py holds the Away engines)."""

from __future__ import annotations

from typing import Any

from looop.act.landing import LandConflict, Landed, LandError, LandRequest, NothingToLand, land
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.workers import reviewsend
from looop.workers.errors import ChangeError, Refused
from looop.workers.review import Review, review, worker_tree
from looop.workers.reviewgit import Diff
from looop.workers.reviewrounds import Comment, Round

REVIEW_TIMEOUT_S = 60.0  # a review or its comments read where the checkouts are


class Here:
    """Worker `wid`'s change where its checkouts are here: read, commented on, its round sent
    back and landed, as every face asks it (its Backend picks this: act/landaway.py); an
    engine away overrides each (act/landfar.py)."""

    def __init__(self, ctx: Ctx, wid: str) -> None:
        self.ctx, self.wid = ctx, wid

    def review(self, diffs: list[Diff] | None = None) -> Review:
        """`diffs`: given, its files' hunks are left to read from them as git writes them
        (workers/review.py); away, the review is whole and `diffs` left empty."""
        return review(self.ctx, self.wid, diffs)

    def has_change(self) -> None:
        """Nothing when the worker has a change to comment on; else its one line. Away, its
        host or pod says so when asked."""
        worker_tree(self.ctx, self.wid)

    def comment(self, on_lines: list[tuple[str, str]], on_all: list[str]) -> Round:
        return reviewsend.add_comments(self.ctx, self.wid, on_lines, on_all)

    def send(self, knobs: Knobs) -> Round:
        return reviewsend.send(self.ctx, knobs, self.wid)

    def land(self, knobs: Knobs, ask: LandRequest) -> Landed:
        """Landed at the tips the human approved (`ask.at`), never later."""
        return land(self.ctx, knobs, self.wid, ask)


class Away(Here):
    """A change whose checkouts are away: asked there (`ask`), `where` naming the place."""

    where = ""  # "host h1", "worker w1's pod"

    def ask(self, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    def reached(self) -> None:
        """Raised when the worker cannot be reached where it ran."""
        raise NotImplementedError

    def ended(self, text: str) -> bool:
        """The worker that ended resumed with the round `text` (True: as its prompt)."""
        raise NotImplementedError

    def has_change(self) -> None:
        return None  # its host or pod says so when asked

    def asked_land(self, req: dict[str, Any], timeout: float, lost: type[Exception]) -> Any:
        """The landing asked there; `lost`: a failure that may come after it landed."""
        try:
            return self.ask("land", req, timeout)
        except Refused:
            raise
        except lost as e:
            raise LandError(
                f"{e} during the landing of worker {self.wid}: it may have landed — `looop "
                f"review {self.wid}` shows where its branch is"
            ) from None

    def send(self, knobs: Knobs) -> Round:
        """The draft round sent as any round is (workers/reviewsend.py), once reached."""
        self.reached()
        return reviewsend.send(self.ctx, knobs, self.wid, self.ended)

    def comment(self, on_lines: list[tuple[str, str]], on_all: list[str]) -> Round:
        """Comments drafted at this home; each FILE:LINE one takes its lines from where the
        checkouts are (which refuses a file outside the change as a home's review would)."""
        whole = reviewsend.whole_comments(on_all)
        for spec, _ in on_lines:
            reviewsend.parse_place(spec)  # a bad place is said before it is asked
        if not on_lines:
            return reviewsend.add_round(self.ctx, self.wid, self.review().tip, whole)
        got = self.ask("review", {"lines": [list(x) for x in on_lines]}, REVIEW_TIMEOUT_S)
        tip, raw = got.get("tip"), got.get("comments")
        if not isinstance(tip, str) or not isinstance(raw, list) or len(raw) != len(on_lines):
            raise ChangeError(f"{self.where} answered comments this home cannot read")
        said = [comment_of(self.where, c) for c in raw]
        return reviewsend.add_round(self.ctx, self.wid, tip, [*said, *whole])


def comment_of(where: str, c: Any) -> Comment:
    """A comment as `where` ("host h1", a pod) answered it, checked."""
    ok = isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("file"), str)
    line, context = (c.get("line"), c.get("context")) if isinstance(c, dict) else (None, None)
    if not ok or not isinstance(line, int) or not isinstance(context, list):
        raise ChangeError(f"{where} answered a comment this home cannot read")
    return Comment(str(c["text"]), str(c["file"]), line, tuple(str(x) for x in context))


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
