"""A worker's review on the web: GET /api/v1/workers/{id}/review (`looop review ID --json`,
workers/review.py), and its three actions as the CLI's own functions — a comment drafted
(`--comment FILE:LINE TEXT` / `--comment-all TEXT`), the round sent (`--send`: told to a live
worker, an ended one resumed), and the change landed (`looop land`, act/landing.py), the last
a human's action journaled as approved from the web (or `watch`). Every field is checked
before anything is written; each refusal is one line. A worker on an SSH host or in a pod:
its review and its three actions are read and done there, as its Backend picks them
(act/landaway.py); its rounds are kept here and each landing journaled here."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from looop.act.journal import append_journal
from looop.act.landaway import change_of
from looop.act.landing import Approved, LandConflict
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.sessionfiles import attempts_of
from looop.remote.ssh.link import Unreachable
from looop.web.errors import WebError, reaching, refused, unreached
from looop.web.reads import session_id, way
from looop.workers import attempts, reviewsend

ACTOR = "web"
MODES = ("ff", "merge", "pr")


def worker_review(ctx: Ctx, sid: str) -> dict[str, Any]:
    """A repo worker's change: commits, files with hunks, verify, summary, comment rounds,
    read by its Backend where its checkouts are (here, its SSH host or its pod); a group's
    attempts side by side (`looop review ID`'s table)."""
    if attempts_of(str(ctx.paths.data), sid):
        return {"v": 1, "attempts": attempts.rows(ctx, sid, lambda a: change_of(ctx, a).review())}
    return reaching(sid, way(ctx, sid).review, sid)


def _field(body: dict[str, Any], key: str) -> str:
    v = body.get(key, "")
    if not isinstance(v, str):
        raise WebError(400, f"field '{key}' must be a string")
    return v


def comment(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """{"text", "file"?, "line"?}: a comment on FILE:LINE at the branch's tip, or (no file) on
    the whole change, added to the draft round; nothing reaches the worker until sent."""
    sid = session_id(sid)
    text, path = _field(body, "text"), _field(body, "file")
    line = body.get("line")
    if path and (isinstance(line, bool) or not isinstance(line, int) or line < 1):
        raise WebError(400, "field 'line' must be a line number (1 or more) with 'file'")
    if not path and line is not None:
        raise WebError(400, "field 'line' needs its 'file'")
    try:
        c = change_of(ctx, sid)  # here, on an SSH host or in a pod: the lines are read there
        c.has_change()  # no change to comment on: the state, not the request
    except LooopError as e:  # no such worker: 404, as its other routes answer
        raise refused(sid, e) from None
    on_lines = [(f"{path}:{line}", text)] if path else []
    on_all = [] if path else [text]
    try:
        rd = c.comment(on_lines, on_all)
    except Unreachable as e:
        raise unreached(sid, e) from None
    except LooopError as e:
        raise WebError(400, str(e)) from None
    return {"ok": True, "round": rd.n, "comments": len(rd.comments)}


def send(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """The draft round as one message: told to a live worker, an ended one resumed first."""
    sid = session_id(sid)
    knobs = ctx.knobs()
    try:
        rd = change_of(ctx, sid).send(knobs)
    except LooopError as e:  # its host away (503), no such worker (404), no draft (409)
        raise refused(sid, e) from None
    append_journal(ctx, knobs, f"{actor}: {reviewsend.sent_line(sid, rd)}")
    return {"ok": True, "round": rd.n, "comments": len(rd.comments), "how": rd.sent}


def land_change(ctx: Ctx, sid: str, body: dict[str, Any], actor: str = ACTOR) -> dict[str, Any]:
    """{"at": the tip shown (each repository's: {name: sha}), "mode"?: "ff"|"merge"|"pr",
    "into"?}: `looop land`, approved by the user from `actor`; a branch that moved since
    is refused (409). A conflict answers 409 with `conflict`: the comment to send back."""
    sid = session_id(sid)
    mode, into, at = _field(body, "mode"), _field(body, "into"), body.get("at")
    if mode and mode not in MODES:
        raise WebError(400, f"field 'mode' must be one of {', '.join(MODES)}, not {mode!r}")
    tips = {"": at} if isinstance(at, str) else at
    if (
        not isinstance(tips, dict)
        or not tips
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tips.items())
    ):
        raise WebError(400, "field 'at' must be the tip the review showed ({name: tip} of several)")
    knobs, who = ctx.knobs(), f"user ({actor})"
    try:  # here, on an SSH host or in a pod: landed there
        c = change_of(ctx, sid)
        done = c.land(knobs, mode or None, into or None, who, at=Approved(tips))
    except LandConflict as e:
        raise WebError(409, str(e).split(" — ")[0], {"conflict": e.comment}) from None
    except LooopError as e:
        raise refused(sid, e) from None
    return {"ok": True, **asdict(done)}
