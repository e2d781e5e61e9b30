"""The ask/answer mailbox: durable, file-based questions from workers to a human."""

from __future__ import annotations

import os
import time

from looop.core import store
from looop.core.errors import CorruptState, LooopError

TYPE_CHECKING = False  # `looop told` and `tell` are hot paths for workers: no typing, re, pathlib

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from looop.core.clock import Clock
    from looop.core.store import AnyPath

_ASCII_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_WORKER_FIRST = frozenset(_ASCII_ALNUM + "_")
_WORKER_REST = frozenset(_ASCII_ALNUM + "._-")


class AskError(LooopError):
    pass


def check_worker(worker: str, source: str = "worker id") -> str:
    """A worker id names files (asks/<id>-<n>.json) and glob patterns: no paths, no wildcards.

    It often comes from the environment (LOOOP_SESSION_ID), so the message names the source."""
    ok = 0 < len(worker) <= 64 and worker[0] in _WORKER_FIRST and _WORKER_REST.issuperset(worker)
    if not ok or ".." in worker:
        shown = worker.encode("utf-8", "backslashreplace").decode()[:40]
        raise AskError(
            f"invalid {source} '{shown}': use 1-64 letters, digits, '.', '_' or '-', not "
            "starting with '.' (a worker's own id is set by looop in LOOOP_SESSION_ID)"
        )
    return worker


def _n_of(name: str, worker: str) -> int:
    """n of a `<worker>-<n>` id (a file's stem); 0 when it is not one of this worker's."""
    if name.endswith("\n"):
        name = name[:-1]  # as a regex's `$` would, a final newline is not part of the id
    head, dash, n = name.rpartition("-")
    return int(n) if dash and n.isdecimal() and head == worker else 0


def _stems(d: AnyPath, worker: str) -> list[str]:
    """Stems of d's `<worker>-*.json` entries (as Path.glob lists them; none when d is no dir)."""
    if not os.path.isdir(d):
        return []
    try:
        names = os.listdir(d)
    except PermissionError:
        return []
    pre = f"{worker}-"
    return [
        n[:-5]
        for n in names
        if n.startswith(pre) and n.endswith(".json") and len(n) >= len(pre) + 5
    ]


def new_ask(
    asks: Path,
    answers: Path,
    worker: str,
    prompt: str,
    ref: str | None,
    options: list[str],
    now: float,
) -> dict[str, Any]:
    """Create asks/<worker>-<n>.json exclusively (n = highest seen + 1; rescan on a race)."""
    check_worker(worker)
    if not prompt.strip():
        raise AskError("an ask needs --prompt: the one question the human should answer")
    asks.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        seen = [
            p.stem
            for d in (asks, asks / "archive", answers)
            if d.is_dir()
            for p in d.glob(f"{worker}-*.json")
        ]
        n = max((_n_of(s, worker) for s in seen), default=0) + 1
        ask_id = f"{worker}-{n}"
        rec = {
            "v": 1,
            "id": ask_id,
            "worker": worker,
            "prompt": prompt,
            "reference": ref,
            "options": options,
            "ts": int(now),
        }
        try:
            fd = os.open(asks / f"{ask_id}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(store.dumps_state(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return rec
    raise AskError("could not create an ask id after 50 tries (contention in asks/)")


def pending(asks: Path, answers: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not asks.is_dir():
        return out
    for p in sorted(asks.glob("*.json")):
        if (answers / p.name).exists():
            continue
        try:
            rec = store.read_json_object(p)
        except CorruptState:
            rec = {"id": p.stem, "worker": "?", "prompt": "(unreadable ask record)"}
        if rec:
            out.append(rec)
    return out


def answer(
    asks: Path, answers: Path, ask_id: str, text: str, now: float, force: bool = False
) -> None:
    if "/" in ask_id or ask_id.startswith(".") or not (asks / f"{ask_id}.json").exists():
        raise AskError(f"no pending ask '{ask_id}' — `looop asks` lists them")
    if not force:
        text = _one_of_options(asks / f"{ask_id}.json", ask_id, text)
    answers.mkdir(parents=True, exist_ok=True)
    path = answers / f"{ask_id}.json"
    rec = {"v": 1, "id": ask_id, "answer": text, "ts": int(now)}
    if force:
        store.write_json(path, rec)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise AskError(f"ask '{ask_id}' is already answered — add --force to replace it") from None
    with os.fdopen(fd, "w") as f:
        f.write(store.dumps_state(rec) + "\n")


def _one_of_options(ask_path: Path, ask_id: str, text: str) -> str:
    """An ask made with --options takes one of them (any case; stored as the option is
    spelled). An unreadable ask record has no options to hold the answer to."""
    try:
        rec = store.read_json_object(ask_path) or {}
    except CorruptState:
        return text
    opts = rec.get("options")
    if not isinstance(opts, list):
        return text
    choices = [o for o in opts if isinstance(o, str) and o.strip()]
    if not choices:
        return text
    for o in choices:
        if o.strip().casefold() == text.strip().casefold():
            return o
    raise AskError(
        f"ask '{ask_id}' takes one of: {', '.join(choices)} — answer one of them "
        "(or add --force to answer anything else)"
    )


def read_answer(asks: Path, answers: Path, ask_id: str) -> str | None:
    """The answer text, None while unanswered; loud errors when the ask vanished or the
    answer is corrupt (a worker must never act on a guess)."""
    path = answers / f"{ask_id}.json"
    if not path.exists():
        if not (asks / f"{ask_id}.json").exists():
            raise AskError(f"ask '{ask_id}' disappeared before it was answered")
        return None
    try:
        rec = store.read_json(path)
    except CorruptState as e:
        raise AskError(f"the answer to '{ask_id}' is unreadable ({e}); ask again") from None
    text = rec.get("answer") if isinstance(rec, dict) else None
    if not isinstance(text, str):
        raise AskError(f"the answer to '{ask_id}' has no text; ask again")
    return text


def archive(asks: Path, ask_id: str) -> None:
    """An answered ask leaves the pending list (kept in asks/archive/ for the record)."""
    (asks / "archive").mkdir(parents=True, exist_ok=True)
    try:
        os.replace(asks / f"{ask_id}.json", asks / "archive" / f"{ask_id}.json")
    except FileNotFoundError:
        pass


def new_tell(tells: AnyPath, worker: str, msg: str, now: float) -> str:
    """Queue steering for a worker (the caller checks it is live); returns the tell id."""
    check_worker(worker)
    if not msg.strip():
        raise AskError("a tell needs a message")
    os.makedirs(tells, exist_ok=True)
    for _ in range(50):
        seen = [*_stems(tells, worker), *_stems(os.path.join(tells, "consumed"), worker)]
        n = max((_n_of(s, worker) for s in seen), default=0) + 1
        tid = f"{worker}-{n}"
        try:
            fd = os.open(
                os.path.join(tells, f"{tid}.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644
            )
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(
                store.dumps_state({"v": 1, "id": tid, "worker": worker, "msg": msg, "ts": int(now)})
                + "\n"
            )
        return tid
    raise AskError("could not create a tell id after 50 tries (contention in tells/)")


def take_tells(tells: AnyPath, worker: str) -> list[str]:
    """Claim every pending tell for `worker` by renaming it into consumed/: a tell is
    delivered at most once even when two readers race."""
    check_worker(worker)
    if not os.path.isdir(tells):
        return []
    done = os.path.join(tells, "consumed")
    try:
        os.mkdir(done)
    except FileExistsError:
        if not os.path.isdir(done):
            raise  # as Path.mkdir(exist_ok=True) does: a file stands where the dir goes
    pending = sorted(_stems(tells, worker), key=lambda stem: _n_of(stem, worker))
    out = []
    for stem in pending:
        if _n_of(stem, worker) == 0:
            continue
        name = f"{stem}.json"
        try:
            os.rename(os.path.join(tells, name), os.path.join(done, name))
        except FileNotFoundError:
            continue  # another reader took it
        try:
            rec = store.read_json(os.path.join(done, name))
            msg = rec.get("msg") if isinstance(rec, dict) else None
        except CorruptState:
            msg = None
        out.append(msg if isinstance(msg, str) else "(an unreadable tell)")
    return out


def await_answer(
    asks: Path,
    answers: Path,
    tells: Path,
    ask_id: str,
    worker: str,
    clock: Clock,
    poll_s: float,
    timeout_s: float | None,
) -> tuple[str, list[str]] | None:
    """Block until the human answers `ask_id`: (answer, queued tells for the worker), the ask
    archived; None when timeout_s passes first. The answer is a file another process writes,
    so this polls it, every poll_s."""
    deadline = clock.monotonic() + timeout_s if timeout_s else None
    while True:
        text = read_answer(asks, answers, ask_id)
        if text is not None:
            archive(asks, ask_id)
            return text, take_tells(tells, worker)  # queued steering rides along
        if deadline is not None and clock.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
