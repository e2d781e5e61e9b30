"""A worker whose checkouts are away from home (on an SSH host, in a Kubernetes pod) has its
change read there, by the same review code, and answered as JSON; the home adds what is its
own — the comment rounds, the verify it ran, the decider's proposal. One merge of the two for
every place (remote/ssh/backend.far_review asks a host's satellite, act/landfar.py a pod)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from looop.core.context import Ctx
from looop.workers import landask
from looop.workers.errors import ChangeError
from looop.workers.review import Review, verify_of
from looop.workers.reviewjson import BadReview, commits_of, review_from_json
from looop.workers.reviewrounds import load_rounds

# asked where the checkouts are: the request {"id", "since"} -> the answer {"review", "since"}
Ask = Callable[[dict[str, Any]], dict[str, Any]]


def away_review(ctx: Ctx, wid: str, ask: Ask, where: str) -> Review:
    """The worker's change as `ask` reads it where its checkouts are (`where` names that
    place in a refusal: "host h1"), with this home's rounds, verify and proposal."""
    rounds = load_rounds(ctx, wid)
    sent = [r for r in rounds if r.sent]
    got = ask({"id": wid, "since": sent[-1].tip if sent else ""})
    try:
        r = review_from_json(got.get("review"))
        since = got.get("since") or []
        after = commits_of(since if isinstance(since, list) else [])
    except (BadReview, AttributeError) as e:
        raise ChangeError(f"{where} answered a review this home cannot read: {e}") from None
    verify = verify_of(ctx, wid)
    return replace(
        r,
        wid=wid,
        verify=verify if verify.state != "none" else r.verify,
        rounds=tuple(rounds),
        since_last=after if sent and sent[-1].tip != r.tip else (),
        proposal=landask.pending(ctx, wid),
    )
