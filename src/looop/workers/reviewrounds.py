"""The comment rounds kept with a worker's change: DATA/reviews/<id>.json holds every round a
reviewer sent (its comments with their context, the branch's tip when sent, how it reached the
worker), written whole or not at all, read back fail-closed (a broken file is said, not
guessed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import CorruptState, LooopError

MAX_ROUNDS = 200  # a change reviewed more than this is a conversation for a human
WAITING = "waiting for the worker to be idle"


@dataclass(frozen=True)
class Comment:
    text: str
    file: str = ""  # "": on the whole change
    line: int = 0
    context: tuple[str, ...] = ()  # a few lines around `line` at the tip it was written on

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else "the whole change"


@dataclass(frozen=True)
class Round:
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
    pending waits for the worker to be idle at its input box (workers/reviewsend.deliver)."""
    tid = told_id(r)
    if not tid:
        return r
    waits = (ctx.paths.tells / f"{tid}.json").exists()
    return replace(r, sent=f"{r.sent}, {WAITING if waits else 'delivered'}")


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
    obj = {"v": 1, "worker": wid, "rounds": [asdict(r) for r in rounds[-MAX_ROUNDS:]]}
    path = rounds_file(ctx, wid)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, jsonio.dumps(obj, indent=2, ensure_ascii=False) + "\n")
