"""A worker's change where its checkouts are here and what every engine away shares (`Away`:
its comments, the answers read back), as a review reads and comments on it (act/landaway.py
picks the engine; act/landfar.py holds the Away engines). A review loads no landing and no
resume: act/landing.py `land` lands it, act/roundsend.py sends its round back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from looop.core.context import Ctx
from looop.workers import reviewsend
from looop.workers.errors import ChangeError
from looop.workers.review import Review, review, worker_tree
from looop.workers.reviewgit import Diff
from looop.workers.reviewrounds import Comment, Round

REVIEW_TIMEOUT_S = 60.0  # a review or its comments read where the checkouts are


class Here:
    """Worker `wid`'s change where its checkouts are here: read, commented on and its round
    sent back, as every face asks it (its Backend picks this: act/landaway.py); an engine
    away overrides each (act/landfar.py) and lands it its own way (act/landing.py `Lands`)."""

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

    def resumes(self) -> Callable[[str], bool] | None:
        """Once the worker is reached, how one that ended is resumed with a round's text
        where it ran (act/roundsend.py); None: here."""
        return None


class Away(Here):
    """A change whose checkouts are away: asked there (`ask`), `where` naming the place."""

    where = ""  # "host h1", "worker w1's pod"

    def ask(self, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    def has_change(self) -> None:
        return None  # its host or pod says so when asked

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
