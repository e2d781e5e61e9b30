"""The satellite's review and land verbs: a worker on an SSH host has its checkouts there, so
its home asks the host (`looop satellite KEY review|land`, JSON in and out) to read the change
and to land it, with the same code a worker at home is reviewed and landed with.

- `review`: the change (Review.to_json), the commits after `since` (the tip the home's last
  round was sent on), and each FILE:LINE comment of `lines` with the lines around it at the
  branch's tip. The rounds stay at the home, which sends them.
- `resume`: a worker that ended here resumed with the round its home sends (`why`).
- `land`: the landing at the tips the human approved (`at`), as the home's config says
  (`land`: its "land" object) and in the host's repository (a pull request pushed from there);
  refused with the one line (and a conflict's comment to send back) as an answer, not an
  error, so the home raises the same kind."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from looop.act.landconfig import land_config
from looop.act.landing import Approved, LandError, land
from looop.act.landlocal import refusal
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote.ssh.satellite import worker_id
from looop.runners.presets import PLACEHOLDER
from looop.workers import reviewgit, reviewsend
from looop.workers.resume import read_record, resume_worker
from looop.workers.review import review, worker_trees


def there_verb(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    wid = worker_id(req)
    if op == "review":
        return _review(ctx, wid, req)
    if op == "land":
        return _land(ctx, wid, req)
    if op == "resume":
        return _resume(ctx, wid, req)
    raise LooopError(f"unknown satellite verb {op!r}")


def _review(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    lines = req.get("lines") or []
    if not isinstance(lines, list) or not all(
        isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in lines
    ):
        raise LooopError("review: 'lines' must be a list of [FILE:LINE, TEXT] pairs")
    if lines:  # only the comments: the home drafts them
        tip, got = reviewsend.line_comments(ctx, wid, [(a, b) for a, b in lines])
        return {"tip": tip, "comments": [asdict(c) for c in got]}
    r = review(ctx, wid)
    since = req.get("since")
    after: list[dict[str, Any]] = []
    if isinstance(since, str) and since and since != r.tip:
        try:
            tree = worker_trees(ctx, wid)[0]
            after = [asdict(c) for c in reviewgit.commits(ctx, tree, since, r.tip)]
        except LooopError:
            after = []  # the tip it was sent on is gone (rewritten): the commits say it all
    return {"review": r.to_json(), "since": after}


def _land(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    mode, into, repo = land_words(req, None)
    actor = req.get("actor")
    obj = req.get("land")
    cfg = land_config({"land": obj if isinstance(obj, dict) else {}})
    who = actor if isinstance(actor, str) and actor.isprintable() and actor else "home"
    try:
        at = Approved.from_json(req.get("at"))
        done = land(ctx, ctx.knobs(), wid, mode, into, who, repo, cfg, at=at)
    except LandError as e:
        return refusal(e)
    return {"landed": asdict(done)}


def land_words(req: dict[str, Any], *modes: str | None) -> tuple[Any, str | None, str | None]:
    """A landing request's mode (one of `modes` or ff, merge, pr), `into` and `repo`."""
    mode, into, repo = (req.get(k) for k in ("mode", "into", "repo"))
    if mode not in (*modes, "ff", "merge", "pr"):
        raise LooopError(f"land: no way to land called {mode!r}")
    for key, val in (("into", into), ("repo", repo)):
        if val is not None and (not isinstance(val, str) or not val or val.startswith("-")):
            raise LooopError(f"land: {key!r} must be a branch or folder name")
    return mode, into, repo


def _resume(ctx: Ctx, wid: str, req: dict[str, Any]) -> dict[str, Any]:
    """A worker that ended here resumed on its conversation, told `why` first (a review
    round its home sends); "prompt": its resume line took that as its prompt file."""
    why = req.get("why")
    if not isinstance(why, str) or not why.strip():
        raise LooopError("resume: 'why' must be the text the worker is told")
    rec = read_record(ctx, wid)
    resume_worker(ctx, ctx.knobs(), wid, why=why)
    took = rec is not None and rec.resume is not None and PLACEHOLDER in rec.resume
    return {"resumed": wid, "prompt": took}
