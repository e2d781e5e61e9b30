"""The ask/answer mailbox: durable, file-based questions from workers to a human."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from looop.home import jsonio, store
from looop.home.boxfolder import Folder, readable_answer, unanswered
from looop.home.errors import CorruptState
from looop.human.tellbox import AskError as AskError
from looop.human.tellbox import check_worker, create_numbered, id_number, keyed, stems

# Asks one worker may keep waiting on a human: one more is refused, so one worker cannot fill
# the needs-you queue (a landing proposal, looop's own, is not counted).
MAX_PENDING_ASKS = 3


class NoSuchAsk(AskError):
    """No pending ask by that id."""


class AskArchived(NoSuchAsk):
    """The ask left the pending list (its asker archived it) with no answer on file."""


class AskAnswered(AskError):
    """The ask has an answer already (pending still, or archived by its asker)."""


class NotAnOption(AskError):
    """The ask was made with --options and the answer is none of them."""


def new_ask(
    asks: Path,
    answers: Path,
    worker: str,
    prompt: str,
    ref: str | None,
    options: list[str],
    now: float,
    key: str | None = None,
    land: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create asks/<worker>-<n>.json exclusively (n = highest seen + 1; rescan on a race).
    `key`: the home's request key of a worker away from home (keyed_ask finds it again);
    `land`: the change a landing proposal carries (workers/reviewrounds.py)."""
    check_worker(worker)
    if not prompt.strip():
        raise AskError("an ask needs --prompt: the one question the human should answer")
    waiting = pending_of(asks, answers, worker) if land is None else []
    if len(waiting) >= MAX_PENDING_ASKS:
        raise AskError(
            f"worker {worker} has {len(waiting)} asks waiting on a human already (at most "
            f"{MAX_PENDING_ASKS}): wait on one (`looop ask --wait {waiting[0]}`) or ask again "
            "once they are answered"
        )
    asks.mkdir(parents=True, exist_ok=True)
    with Folder(asks) as a, a.sub("archive") as kept, Folder(answers) as b:
        seen = [s for d in (a, kept, b) for s in stems(d, worker)]
    rec = {"v": 1, "worker": worker, "prompt": prompt, "reference": ref, "options": options}
    rec.update(ts=int(now), key=key, land=land)
    # taken only if free (as O_EXCL), and no reader — a beat's probe — sees it half written
    return create_numbered(asks, worker, seen, rec, "an ask")


def pending_of(asks: Path, answers: Path, worker: str) -> list[str]:
    """The ids of `worker`'s asks still waiting on a human, oldest first."""
    pre = f"{worker}-"
    with Folder(asks) as a, Folder(answers) as b:
        got = [
            n[:-5]
            for n in a.names(".json")
            if n.startswith(pre) and not (b.has(n) and readable_answer(b, n))
        ]
    return sorted((s for s in got if id_number(s, worker)), key=lambda s: id_number(s, worker))


def drop_pending(asks: Path, answers: Path, worker: str) -> int:
    """A killed worker's asks leave the pending list (archived, kept for the record): no one
    is left to read their answers. How many."""
    mine = pending_of(asks, answers, worker)
    for ask_id in mine:
        archive(asks, ask_id)
    return len(mine)


def keyed_ask(asks: Path, worker: str, key: str) -> str | None:
    """The id of `worker`'s ask made for request `key` (pending or archived), if any: a
    request the home runs again after a cut waits on that ask instead of asking twice."""
    check_worker(worker)
    with Folder(asks) as a, a.sub("archive") as kept:
        return keyed((a, kept), worker, key)


def pending(asks: Path, answers: Path) -> list[dict[str, Any]]:
    return pending_read(asks, answers)[0]


def pending_read(asks: Path, answers: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The asks with no answer yet, by file name, and what the listing left out or refused
    (asks/ is a folder a box can write: bounded, no symlink followed; boxfolder)."""
    with Folder(asks) as a, Folder(answers) as b:
        return unanswered(a, b), a.note("asks")


def answer(
    asks: Path, answers: Path, ask_id: str, text: str, now: float, force: bool = False
) -> None:
    if "/" in ask_id or ask_id.startswith(".") or not (asks / f"{ask_id}.json").exists():
        raise _not_pending(asks, answers, ask_id)
    path = answers / f"{ask_id}.json"
    if not force:
        if path.exists():  # answered already: that, not the answer's spelling, is what is wrong
            raise _answered(ask_id, answers)
        text = _one_of_options(asks / f"{ask_id}.json", ask_id, text)
    answers.mkdir(parents=True, exist_ok=True)
    rec = {"v": 1, "id": ask_id, "answer": text, "ts": int(now)}
    if force:
        store.write_json(path, rec)
        return
    # whole or absent: the asking worker polls for this file and acts on what it reads
    if not store.create_new(path, jsonio.canonical(rec) + "\n"):  # answered meanwhile
        raise _answered(ask_id, answers)


def _answered(ask_id: str, answers: Path) -> AskAnswered:
    with Folder(answers) as d:
        if not readable_answer(d, f"{ask_id}.json"):
            return AskAnswered(
                f"ask '{ask_id}' has an unreadable answer (answers/{ask_id}.json) — "
                "add --force to replace it"
            )
    return AskAnswered(f"ask '{ask_id}' is already answered — add --force to replace it")


def _not_pending(asks: Path, answers: Path, ask_id: str) -> NoSuchAsk | AskAnswered:
    """Why an id names no pending ask, typed; one message for all (the CLI prints it)."""
    msg = f"no pending ask '{ask_id}' — `looop asks` lists them"
    if "/" in ask_id or ask_id.startswith("."):
        return NoSuchAsk(msg)
    if (answers / f"{ask_id}.json").exists():
        return AskAnswered(msg)
    if (asks / "archive" / f"{ask_id}.json").exists():
        return AskArchived(msg)
    return NoSuchAsk(msg)


def _one_of_options(ask_path: Path, ask_id: str, text: str) -> str:
    """An ask made with --options takes one of them (any case; stored as the option is
    spelled). An unreadable ask record has no options to hold the answer to."""
    try:
        with Folder(ask_path.parent) as d:
            rec = d.read_object(ask_path.name) or {}
    except CorruptState:
        return text
    opts = rec.get("options")
    opts = opts if isinstance(opts, list) else []
    choices = [o for o in opts if isinstance(o, str) and o.strip()]
    if not choices:
        return text
    for o in choices:
        if o.strip().casefold() == text.strip().casefold():
            return o
    raise NotAnOption(
        f"ask '{ask_id}' takes one of: {', '.join(choices)} — answer one of them "
        "(or add --force to answer anything else)"
    )


def read_answer(asks: Path, answers: Path, ask_id: str) -> str | None:
    """The answer text, None while unanswered. An answer file that is unreadable or holds no
    text is no answer: refused as data, its ask stays pending (`looop answer ID --force`
    replaces it) and the worker keeps waiting — it never acts on a guess. AskError when the
    ask vanished unanswered."""
    path = answers / f"{ask_id}.json"
    text = _answer_text(answers, path.name) if path.exists() else None
    if text is None and not (asks / f"{ask_id}.json").exists():
        raise AskError(f"ask '{ask_id}' disappeared before it was answered")
    return text


def _answer_text(answers: Path, name: str) -> str | None:
    try:
        with Folder(answers) as d:
            rec = d.read_json(name)
    except CorruptState:
        return None
    text = rec.get("answer") if isinstance(rec, dict) else None
    return text if isinstance(text, str) else None


def archive(asks: Path, ask_id: str) -> None:
    """An answered ask leaves the pending list (kept in asks/archive/ for the record)."""
    (asks / "archive").mkdir(parents=True, exist_ok=True)
    name = f"{ask_id}.json"
    with Folder(asks) as a, a.sub("archive") as kept:
        if kept.refused is not None:  # never moved into what a box's symlink points at
            raise AskError(f"{kept.refused} — remove it")
        if a.fd < 0 or kept.fd < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            os.replace(name, name, src_dir_fd=a.fd, dst_dir_fd=kept.fd)
