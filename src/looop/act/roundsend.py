"""A review's draft round sent back to its worker, wherever its checkouts are (act/landaway.py
`change_of`): ONE message with every comment, told to a live worker (typed into its session as
one line once idle at its input box, workers/rounddelivery.py; or read by `looop told`), or a
worker that ended started again on its recorded conversation and told it first
(workers/resume.py; away, where it ran: act/landfar.py); journaled with who sent it. A module
of its own: reading a review (act/landlocal.py) or landing it loads no resume."""

from __future__ import annotations

import contextlib

from looop.act.journal import append_journal
from looop.act.landlocal import Here
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.home.sessionfiles import live
from looop.human.leases import remote_alive
from looop.human.tellbox import new_tell
from looop.workers.resume import resume_worker
from looop.workers.reviewrounds import Round, load_rounds, save_rounds, shown
from looop.workers.rounddelivery import deliver


def message(wid: str, r: Round) -> str:
    """The one message a round is sent as."""
    out = [
        f"Review of your change (round {r.n}, on commit {r.tip[:12]}): a human left "
        f"{len(r.comments)} comment(s). Address each one, commit on your branch, then say "
        "what you changed (reports/" + wid + ".md).",
        "",
    ]
    for i, c in enumerate(r.comments, 1):
        out.append(f"{i}. {c.where}: {c.text}")
        out.extend(f"     {ln}" for ln in c.context)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _resume_here(c: Here, knobs: Knobs, text: str) -> bool:
    """Worker `c.wid`, here and ended, started again on its conversation, told `text` first."""
    return resume_worker(c.ctx, knobs, c.wid, why=text).prompt


def send(c: Here, knobs: Knobs, actor: str) -> Round:
    """Deliver worker `c.wid`'s draft round; it is marked sent only once it reached the
    worker, and journaled as `actor`'s (`user (cli)`, `user (web)`)."""
    ctx, wid = c.ctx, c.wid
    # how one that ended is resumed with the text (True: as its prompt file); away: reached
    # first, resumed where it ran
    resume = c.resumes() or (lambda text: _resume_here(c, knobs, text))
    rounds = load_rounds(ctx, wid)
    if not rounds:
        c.has_change()  # no such worker, or one with no change: its own line
    if not rounds or rounds[-1].sent:
        raise LooopError(
            f"no comments to send to worker {wid} — add some with `looop review {wid} "
            "--comment FILE:LINE TEXT` or `--comment-all TEXT`"
        )
    draft = rounds[-1]
    text = message(wid, draft)
    data = str(ctx.paths.data)

    def told() -> str:
        return f"told {new_tell(ctx.paths.tells, wid, text, ctx.clock.now())}"

    if live(data, wid) or remote_alive(data, wid):
        how = told()
    else:  # says why when it cannot be resumed; one whose resume line takes no prompt file
        # has the comments wait for its `looop told`
        how = "resumed" if resume(text) else f"resumed, {told()}"
    sent = draft._replace(sent=how, ts=int(ctx.clock.now()))
    save_rounds(ctx, wid, [*rounds[:-1], sent])
    ctx.events.record("review_sent", id=wid, round=sent.n, comments=len(sent.comments), how=how)
    if live(data, wid):
        with contextlib.suppress(LooopError):  # not taken: it waits for the beat (shown so)
            deliver(ctx, knobs, wid)
    out = shown(ctx, sent)
    said = f"sent review round {out.n} to {wid} ({len(out.comments)} comment(s), {out.sent})"
    append_journal(ctx, knobs, f"{actor}: {said}")
    return out
