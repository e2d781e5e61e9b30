"""The write-ahead records: one locked intent file per actor for the length of a side effect,
and the check that reports (once, never retrying) the moves whose actor died mid-way."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from looop.act.journal import append_journal
from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import jsonio, store
from looop.home.config import Knobs


def _wal_dir(ctx: Ctx) -> Path:
    return ctx.paths.data / ".wal"


@contextlib.contextmanager
def intent(ctx: Ctx, actor: str, kind: str, fingerprint: str, summary: str) -> Iterator[None]:
    """Hold a locked intent record for the whole side effect; the flock proves we are alive.

    The record is written and locked under a dot-name, then renamed into place, so a checker
    never sees an unlocked record from a live actor.
    """
    wal_dir = _wal_dir(ctx)
    pid = os.getpid()
    who = re.sub(r"[^A-Za-z0-9_]", "_", actor) or "actor"
    name = f"{who}-{pid}-{os.urandom(4).hex()}.json"
    final, tmp = wal_dir / name, wal_dir / f".{name}.tmp"
    record = {"v": 1, "action": kind, "fingerprint": fingerprint, "ts": int(ctx.clock.now()),
              "pid": pid, "summary": summary}  # fmt: skip
    fd = -1
    try:
        wal_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, store.encode(jsonio.canonical(record) + "\n"))
        os.fsync(fd)
        os.replace(tmp, final)
    except OSError as e:
        if fd >= 0:  # ours: never left half-written
            os.close(fd)
            store.remove(tmp)
        raise ExecError(
            f"cannot write the crash record in .wal/ ({e.strerror}); the {kind} was NOT run"
        ) from e
    try:
        yield
    finally:
        # Unlink while still locked: there is no moment where the record looks abandoned.
        with contextlib.suppress(OSError):
            final.unlink()
        os.close(fd)


def _take_if_dead(path: Path, keep: Callable[[bytes], bool] | None = None) -> bytes | None:
    """The record's bytes if no live process holds its lock (and remove it); None otherwise.
    `keep(raw)`, run while the lock is held and before removal, says whether the record is
    now kept (whatever it writes is done before the record goes, so a crash between only
    repeats it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # its actor is alive and mid-action
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return None  # replaced under us; look again next beat
        except FileNotFoundError:
            return None  # finished and removed between listing and locking
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        raw = b"".join(chunks)
        if keep is not None and keep(raw):
            return None
        path.unlink()
        return raw
    except OSError:
        return None  # not a record we can read or remove (a directory, a permission problem)
    finally:
        os.close(fd)


def _describe(raw: bytes) -> dict[str, Any]:
    try:
        obj = jsonio.loads(raw.decode("utf-8"))
    except ValueError:  # not UTF-8 or not JSON
        obj = None
    if not isinstance(obj, dict):
        return {"action": "unknown", "fingerprint": "", "summary": ""}
    kind = obj.get("action", obj.get("kind"))  # "kind" is the single-file reference spelling
    return {
        "action": kind if isinstance(kind, str) and kind else "unknown",
        "fingerprint": str(obj.get("fingerprint", "")),
        "ts": obj.get("ts"),
        "pid": obj.get("pid"),
        "summary": str(obj.get("summary", "")),
    }


_JOURNAL_LOOK_BACK = 200  # lines of journal.md searched for a record's line already written


def _journal_line(rec: dict[str, Any], name: str) -> str:
    """The journal's line for a move that died mid-way; it names its record, so a crash
    between writing it and removing the record never writes it twice."""
    what = rec["summary"] or rec["action"]
    return (
        f"interrupted · {what} — died mid-way (pid {rec.get('pid') or '?'}), NOT re-run; "
        f"check it did not half-run [{name.removesuffix('.json')}]"
    )


def _journal_once(ctx: Ctx, knobs: Knobs, line: str) -> None:
    tag = line[line.rindex("[") :]
    if any(row.endswith(tag) for row in store.tail_lines(ctx.paths.journal, _JOURNAL_LOOK_BACK)):
        return
    append_journal(ctx, knobs, line)


def check_interrupted(ctx: Ctx, knobs: Knobs | None = None) -> list[dict[str, Any]]:
    """Report (once: an event and a journal line) and remove intent records whose actor died
    mid side effect; never retry. A record whose line cannot be journaled (a full disk) is
    kept for the next beat, said as a warning."""
    wal_dir = _wal_dir(ctx)
    try:
        names = sorted(os.listdir(wal_dir))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    found: list[dict[str, Any]] = []
    candidates: list[tuple[Path, str]] = []
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            # A writer died before its record was in place: nothing ran yet.
            _take_if_dead(wal_dir / name)
        elif name.endswith(".json"):
            candidates.append((wal_dir / name, name.split("-", 1)[0]))
    legacy = ctx.paths.wal  # the reference's single `.action-wal.json`
    if legacy.exists():
        candidates.append((legacy, "pulse"))
    use = knobs if knobs is not None else ctx.knobs()
    for path, actor in candidates:
        raw = _take_if_dead(path, functools.partial(_unjournaled, ctx, use, name=path.name))
        if raw is None:
            continue
        rec = _describe(raw)
        rec["file"] = path.name
        who = "beat" if actor == "pulse" else f"'{actor}' action"
        what = f" ({one_line(rec['summary'], 120)})" if rec["summary"] else ""
        ctx.events.emit(
            "warn",
            "tick.interrupted",
            f"previous {who} died mid '{rec['action']}'{what}; NOT retried; "
            "check it did not half-run",
            action=rec["action"],
            fingerprint=rec["fingerprint"],
        )
        ctx.events.record("tick_interrupted", action=rec["action"], fingerprint=rec["fingerprint"])
        found.append(rec)
    return found


def _unjournaled(ctx: Ctx, knobs: Knobs, raw: bytes, *, name: str) -> bool:
    """Journal the dead record's line; True (keep the record) when that cannot be done."""
    try:
        _journal_once(ctx, knobs, _journal_line(_describe(raw), name))
    except (ExecError, OSError) as e:
        ctx.events.emit(
            "warn",
            "tick.interrupted_unjournaled",
            f"a move that died mid-way ({name}) could not be journaled ({e}); "
            "its record is kept and tried again next beat",
        )
        return True
    return False
