"""The decider's landing proposal raised (propose_land, act/moves/propose.py): an ask carrying
the worker's change — branch, base..tip, diff stat, verify — for a human to approve by landing
it or to decline (workers/landask.py keeps which ask it is and answers it)."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import jsonio, store
from looop.home.errors import LooopError
from looop.human import mailbox
from looop.human.notify import notify
from looop.workers import landask
from looop.workers.review import Review, review


def _carried(r: Review, reason: str) -> tuple[str, dict[str, Any]]:
    """The ask's words and the change it carries."""
    files = [f for each in r.repos for f in each.files] or list(r.files)
    commits = sum(len(each.commits) for each in r.repos) or len(r.commits)
    added = sum(f.added for f in files if not f.binary)
    removed = sum(f.removed for f in files)
    stat = f"{commits} commit(s), {len(files)} file(s) +{added} -{removed}"
    where = f"{r.branch} ({r.base[:12]}..{r.tip[:12]})"
    if len(r.repos) > 1:
        where = f"{r.branch} in {', '.join(each.name for each in r.repos)}"
    prompt = (
        f"Land worker {r.wid}'s change? {one_line(reason) or 'the decider proposes it'} — "
        f"{where}: {stat}; verify {r.verify.state}. Review it (`looop review {r.wid}`); "
        f"approve by landing it (`looop land {r.wid}`, or Land in its review); decline by "
        f"answering {landask.DECLINE}."
    )
    carried = {
        "branch": r.branch, "base": r.base, "tip": r.tip, "stat": stat,
        "verify": r.verify.state, "reason": reason, "repos": [e.name for e in r.repos],
    }  # fmt: skip
    return prompt, carried


def propose(ctx: Ctx, wid: str, reason: str, r: Review | None = None) -> str | None:
    """Raise the ask; what was found instead (journaled) when one for this change already
    waits or was answered. One line (LooopError) when there is nothing to propose. `r`: the
    change as read where its checkouts are (None: here)."""
    r = review(ctx, wid) if r is None else r
    if not any(each.commits for each in r.repos) and not r.commits:
        raise LooopError(f"worker {wid}'s branch has no commits past its base: nothing to land")
    tip = ",".join(each.tip for each in r.repos) or r.tip
    was = landask.read(ctx, wid)
    if was is not None:
        said = landask.answer_of(ctx, was.ask)
        if said is None:
            return f"its landing is already proposed (ask {was.ask}), waiting on the human"
        if was.tip == tip:  # the human answered this very change: no asking twice
            return f"the human answered its landing at this tip already (ask {was.ask}: {said})"
    prompt, carried = _carried(r, reason)
    rec = mailbox.new_ask(
        ctx.paths.asks, ctx.paths.answers, wid, prompt, None, [landask.DECLINE], ctx.clock.now(),
        land=carried,
    )  # fmt: skip
    keep = {"v": 1, "ask": rec["id"], "reason": reason, "ts": rec["ts"], "tip": tip}
    path = landask.proposal_file(ctx, wid)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, jsonio.dumps(keep, indent=2, sort_keys=True) + "\n")
    said = f"worker {wid}'s change waits on your review to land: {one_line(reason)}"
    decline = f"looop answer {rec['id']} {landask.DECLINE}"
    notify(ctx, f"{said}\nland: looop land {wid} · decline: {decline}", rec["id"], "ask")
    return None
