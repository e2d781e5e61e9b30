"""A landing the decider proposes: an ask that carries the change (its branch, base..tip, diff
stat, verify), answered only by a human — approved by landing it (`looop land`, the review's
Land button: the ask is answered with the landing's commit) or declined (`looop answer ID
no`: nothing lands). The decider never lands; it may only raise this.

Which ask is the proposal is looop's own record, reviews/<id>.land.json (asks/ is a folder a
box can write, so an ask's own fields prove nothing): a worker's forged "land" ask is neither
shown as a proposal nor answered by a landing. Raising one is workers/landpropose.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import CorruptState, LooopError
from looop.human import mailbox
from looop.workers.reviewrounds import rounds_file

DECLINE = "no"  # the one answer a reply may give: approving is landing, never an answer


@dataclass(frozen=True)
class Proposal:
    ask: str
    reason: str
    ts: int
    tip: str  # the branch's tip (a worker of several: each repository's, comma-joined)


def proposal_file(ctx: Ctx, wid: str) -> Path:
    return rounds_file(ctx, wid).with_name(f"{wid}.land.json")


def read(ctx: Ctx, wid: str) -> Proposal | None:
    """The worker's last landing proposal (answered or not); None for a name that is no
    worker's id (an ask's `worker` field is a box's to write)."""
    if not wid or "/" in wid or wid.startswith(".") or "\0" in wid:
        return None
    try:
        raw = store.read_json_object(proposal_file(ctx, wid))
    except (CorruptState, OSError):
        return None
    if raw is None or not isinstance(raw.get("ask"), str):
        return None
    ts = raw.get("ts")
    return Proposal(
        raw["ask"], str(raw.get("reason", "")), ts if isinstance(ts, int) else 0,
        str(raw.get("tip", "")),
    )  # fmt: skip


def answer_of(ctx: Ctx, ask: str) -> str | None:
    try:
        return mailbox.read_answer(ctx.paths.asks, ctx.paths.answers, ask)
    except LooopError:
        return "(gone)"  # the ask vanished unanswered: no proposal waits


def seen_file(ctx: Ctx, wid: str) -> Path:
    return rounds_file(ctx, wid).with_name(f"{wid}.seen.json")


def saw(ctx: Ctx, wid: str, tips: dict[str, str]) -> None:
    """The tips `looop review` showed the human (each repository's, by its folder's name):
    what a plain `looop land` approves."""
    store.write_json(seen_file(ctx, wid), {"v": 1, "tips": tips})


def seen(ctx: Ctx, wid: str) -> dict[str, str]:
    """The tips of the last review `looop review` showed ({}: none, or unreadable)."""
    try:
        raw = store.read_json_object(seen_file(ctx, wid))
    except (CorruptState, OSError):
        return {}
    tips = raw.get("tips") if raw else None
    if not isinstance(tips, dict):
        return {}
    return {k: v for k, v in tips.items() if isinstance(k, str) and isinstance(v, str)}


def pending(ctx: Ctx, wid: str) -> Proposal | None:
    """The worker's landing proposal still waiting on the human, if any."""
    got = read(ctx, wid)
    return got if got is not None and answer_of(ctx, got.ask) is None else None


def answer_landed(ctx: Ctx, wid: str, said: str) -> str | None:
    """A human landed the worker: its waiting proposal answered with `said` (the commit); the
    ask's id, None when none waited. A failure to answer is a warning: the landing stands."""
    got = pending(ctx, wid)
    if got is None:
        return None
    try:
        mailbox.answer(ctx.paths.asks, ctx.paths.answers, got.ask, said, ctx.clock.now(), True)
    except (LooopError, OSError) as e:
        ctx.events.emit("warn", "land.answer", f"ask {got.ask} not answered: {e}", id=wid)
        return None
    return got.ask
