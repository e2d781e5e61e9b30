"""The comment rounds kept with a worker's change: DATA/reviews/<id>.json holds every round a
reviewer sent (its comments with their context, the branch's tip when sent, how it reached the
worker), written whole or not at all, read back fail-closed (a broken file is said, not
guessed); beside it, the landing the decider proposed (<id>.land.json) and the tips the last
review showed (<id>.seen.json)."""

from pathlib import Path
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import CorruptState, LooopError
from looop.human import mailbox

MAX_ROUNDS = 200  # a change reviewed more than this is a conversation for a human
WAITING = "waiting for the worker to be idle"


class Comment(NamedTuple):
    text: str
    file: str = ""  # "": on the whole change
    line: int = 0
    context: tuple[str, ...] = ()  # a few lines around `line` at the tip it was written on

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else "the whole change"


class Round(NamedTuple):
    n: int
    ts: int
    tip: str  # the branch's tip the comments were written on
    comments: tuple[Comment, ...]
    sent: str = ""  # how it reached the worker: "told <tell id>", "resumed"; "": not yet


def told_id(r: Round) -> str:
    """The tell a round went as ("": none)."""
    return r.sent.rpartition("told ")[2] if "told " in r.sent else ""


def shown(ctx: Ctx, r: Round) -> Round:
    """The round as `review` shows it: its tell read or typed in is delivered; one still
    pending waits for the worker to be idle at its input box (workers/rounddelivery.py)."""
    if not (tid := told_id(r)):
        return r
    waits = (ctx.paths.tells / f"{tid}.json").exists()
    return r._replace(sent=f"{r.sent}, {WAITING if waits else 'delivered'}")


def rounds_file(ctx: Ctx, wid: str) -> Path:
    return ctx.paths.data / "reviews" / f"{wid}.json"


def _comment(raw: Any) -> Comment:
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise TypeError
    ctxt = raw.get("context", [])
    if not isinstance(ctxt, list) or not all(isinstance(c, str) for c in ctxt):
        raise TypeError
    return Comment(raw["text"], str(raw.get("file", "")), int(raw.get("line", 0)), tuple(ctxt))


def _round(raw: Any) -> Round:
    if not isinstance(raw, dict) or not isinstance(raw.get("comments"), list):
        raise TypeError
    comments = tuple(_comment(c) for c in raw["comments"])
    return Round(int(raw["n"]), int(raw["ts"]), str(raw["tip"]), comments, str(raw.get("sent", "")))


def load_rounds(ctx: Ctx, wid: str) -> list[Round]:
    """Every round sent to this worker, oldest first ([]: none yet)."""
    path = rounds_file(ctx, wid)
    try:
        raw = store.read_json_object(path)
    except FileNotFoundError:
        return []
    except (CorruptState, OSError) as e:
        raise LooopError(f"review rounds {path} cannot be read ({e}) — move it aside") from None
    if raw is None:
        return []
    try:
        return [_round(r) for r in raw.get("rounds", [])]
    except (TypeError, KeyError, ValueError):
        raise LooopError(f"review rounds {path} are not looop's — move it aside") from None


def save_rounds(ctx: Ctx, wid: str, rounds: list[Round]) -> None:
    obj = {"v": 1, "worker": wid, "rounds": [jsonio.plain(r) for r in rounds[-MAX_ROUNDS:]]}
    path = rounds_file(ctx, wid)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, jsonio.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# -- a landing the decider proposes: an ask that carries the change, answered only by a human
# (approved by landing it, the ask answered with the landing's commit; or declined: `looop
# answer ID no`). Which ask is the proposal is looop's own record, reviews/<id>.land.json
# (asks/ is a folder a box can write): a worker's forged "land" ask is neither shown as a
# proposal nor answered by a landing. Raised by act/moves/notes.py (propose).

DECLINE = "no"  # the one answer a reply may give: approving is landing, never an answer


class Proposal(NamedTuple):
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
    what a plain `looop land` approves. No fsync: one lost to a crash (missing, old tips, or
    unreadable) makes `looop land` refuse until the next review, never land unseen work."""
    store.write_json(seen_file(ctx, wid), {"v": 1, "tips": tips}, durable=False)


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
