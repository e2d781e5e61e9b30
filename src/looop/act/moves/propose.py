"""The move that proposes a landing: propose_land raises an ask carrying the worker's change
(workers/review.py) for a human to approve by landing it or to decline. It lands nothing:
landing is a human's action (act/landing.py), which no move imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from looop.act.decision import (
    Mover,
    OnWorker,
    opt_str,
    req_str,
    strip_worker_prefix,
)
from looop.act.moves.far import backend_for
from looop.act.outcome import ExecError
from looop.core.text import one_line
from looop.home.errors import LooopError
from looop.workers import review
from looop.workers.review import review_from_json


@dataclass(frozen=True)
class ProposeLand(OnWorker):
    tag = "propose_land"
    kind = "propose-land"
    teach = r"""propose_land{id,reason} - ask the human to land a finished repo worker's change (its branch
into its base): they land or decline it, never you.
  {"action":"propose_land","id":"fix-login","reason":"done; verify passed"}"""  # noqa: E501

    id: str
    reason: str = ""

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Self:
        return cls(id=req_str(cls.tag, obj, "id"), reason=opt_str(cls.tag, obj, "reason") or "")

    def summary(self) -> str:
        if self.reason.strip():
            return f"propose-land {self.id} · {one_line(self.reason)}"
        return f"propose-land {self.id}"

    def perform(self, by: Mover) -> str | None:
        """Level-triggered: a proposal of this change that waits, or was answered, is found,
        not raised twice."""
        try:
            wid = strip_worker_prefix(self.id)
            # read by its Backend where its checkouts are: here, on an SSH host, in a pod
            r = review_from_json(backend_for(by.ctx, wid).review(wid))
            return review.propose(by.ctx, wid, self.reason.strip(), r)
        except LooopError as e:
            raise ExecError(f"propose_land: {e}") from e
