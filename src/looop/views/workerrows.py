"""The workers as `looop ls`, `worker list` and the sys-sessions probe see them: health, verify
result and last output, built from a session listing's plain fields.

`looop ls` reads them over home/sessionfiles.list_light; workers/needsinput.fleet_view feeds it
Session objects."""

from __future__ import annotations

import os
from bisect import insort
from collections.abc import Container
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from looop.home import store, where
from looop.home.boxfolder import Folder, unanswered
from looop.home.errors import CorruptState
from looop.home.lastoutput import last_output
from looop.home.where import sandboxed
from looop.spend.spent import over_budget, over_limit
from looop.views import needsinput, outcomes

OVER_BUDGET = "over budget"  # a worker the meter stopped at its spend budget (loop/workmeter)

if TYPE_CHECKING:
    from looop.home.clock import Clock
    from looop.views.needsinput import Looker

PULSE = "pulse"


def waiting_workers(asks: str, answers: str) -> set[str]:
    """Workers blocked on a human: the askers of every unanswered ask (mailbox.pending read
    the same way: every `*.json` in asks/ without its answer; an unreadable one asks as `?`)."""
    return set(asks_since(asks, answers))


def asks_since(asks: str, answers: str) -> dict[str, float | None]:
    """Worker -> when its oldest unanswered ask was made (None when no record says); a
    bounded listing that follows no symlink (boxfolder: asks/ is a folder a box can write)."""
    out: dict[str, float | None] = {}
    with Folder(asks) as a, Folder(answers) as b:
        recs = unanswered(a, b)
    for rec in recs:
        worker, ts = rec.get("worker"), rec.get("ts")
        if not isinstance(worker, str):
            continue
        when = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None
        before = out.get(worker)
        if worker not in out or (when is not None and (before is None or when < before)):
            out[worker] = when
    return out


def pending_tells(tells: str) -> dict[str, int]:
    """Worker -> how many tells wait for it in tells/ (`<worker>-<n>.json`, not yet told)."""
    with Folder(tells) as d:
        names = d.names(".json")
    out: dict[str, int] = {}
    for n in names:
        if not n.endswith(".json"):
            continue
        head, dash, num = n[:-5].rpartition("-")
        if dash and head and num.isdecimal():
            out[head] = out.get(head, 0) + 1
    return out


def health(sid: str, alive: bool, waiting: Container[str], stuck: int, quiet: float | None) -> str:
    """busy | waiting-ask | stuck | dead (workers/needsinput refines busy and stuck).
    `quiet`: seconds since its last output on the monotonic clock (home/lastoutput.py)."""
    if not alive:
        return "dead"
    if sid in waiting:
        return "waiting-ask"
    if stuck > 0 and quiet is not None and quiet >= stuck:
        return "stuck"
    return "busy"  # unknown idle counts as busy


def at_work(row: dict[str, Any]) -> bool:
    """Live and not waiting on a human: a TUI agent done with its task stays up at its prompt
    (the last look's needs-input verdict), one asking waits on an answer."""
    return bool(row.get("alive")) and row.get("health") not in ("needs-input", "waiting-ask")


def verify_result(verify: str, wid: str) -> dict[str, Any] | None:
    """A worker's verify record (verify/<id>.json); an unreadable one reads as a failure."""
    try:
        return store.read_json_object(where.join(verify, f"{wid}.json"))
    except CorruptState:
        return {"pass": False, "output": "verify record unreadable"}


def tree_records(data: str) -> dict[str, dict[str, Any]]:
    """Worker -> the record a `--repo` start writes (worktrees/<id>.json, a removed worktree's
    too; an unreadable one is left out): no git call, and one failed listdir in a data dir
    without repo workers."""
    return store.json_objects(where.join(data, where.WORKTREES))


def all_branches(data: str, wid: str, first: dict[str, Any]) -> list[dict[str, str]]:
    """Each checkout's folder and branch, the first repository's first (`first`: its record);
    a worker of several reads its other checkouts' records (worktrees/<id>.parts/), a removed
    or unreadable one left out."""
    recs = [first]
    parts = first.get("parts")
    if isinstance(parts, list) and len(parts) > 1:
        folder = where.join(where.join(data, where.WORKTREES), f"{wid}.parts")
        for part in parts[1:]:
            if not isinstance(part, str) or "/" in part or part.startswith("."):
                continue
            try:
                got = store.read_json_object(where.join(folder, f"{part}.json"))
            except CorruptState:
                continue
            if got is not None:
                recs.append(got)
    out = []
    for raw in recs:
        branch, repo = raw.get("branch"), raw.get("repo")
        if isinstance(branch, str) and not raw.get("removed"):
            name = raw.get("part") or (os.path.basename(repo) if isinstance(repo, str) else "")
            out.append({"name": str(name), "branch": branch})
    return out


class Ends(dict[str, tuple[Any, ...]]):
    """worker_rows' memory across beats (the pulse's): each finished worker's row under what it
    was built from (its listing's fields, its asks, tells and branches then, the outcomes' and
    verifies' folders' stamps); a reader of the row may keep what it made of it after them
    (sense/probes: its entries). `near`: the fleet's asks, tells, branches and those stamps the
    rows were last built beside; `block`: the finished workers a listing passed unread
    (sessions/state.Block, the same object while they stay), their fields and their rows,
    reused whole while `near` stays: a beat's cost stays flat in the workers kept."""

    near: tuple[Any, ...] | None = None
    block: tuple[object, list[dict[str, Any]], list[dict[str, Any]]] | None = None
    shown: list[dict[str, Any]] | None = None  # this beat's rows beside the block's, by id
    # the block's rows, their ids, signal and detail entries (sense/probes)
    entries: tuple[object, frozenset[str], list[dict[str, Any]], dict[str, Any]] | None = None


_BY_ID = itemgetter("id")
# the fleet's asks (worker -> since), pending tells (worker -> count) and branches, as read once
Near = tuple[dict[str, float | None], dict[str, int], dict[str, list[dict[str, str]]]]


def worker_rows(
    data: str,
    sessions: list[dict[str, Any]],
    clock: Clock,
    stuck_secs: int,
    trees: dict[str, dict[str, Any]] | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
    look: Looker | None = None,
    ends: Ends | None = None,
    kept: tuple[object, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """One row per worker (pulse excluded), sorted by id, from sessions as sessionfiles.load_light
    gives them (`trees`: the worktree records, when the caller already read them; `custom`:
    the runners' needs-input patterns; `look`: the beat's screen reader, workers/needsinput;
    None: no screen is read, needs-input is the last beat's verdict; `ends`: the pulse's
    memory, updated: a finished worker's row is the one built last time while all it was
    built from stays, its own files' facts under the outcomes' and verifies' folders'
    stamps, store.settled; `kept`: with `ends`, the block of finished workers a listing passed
    unread and their fields: their rows whole as last time while it and all beside it stay).
    Times are absolute stamps, never ages: an unchanged fleet renders byte-identically."""
    asking = asks_since(where.join(data, where.ASKS), where.join(data, where.ANSWERS))
    tells = pending_tells(where.join(data, where.TELLS))
    recs = tree_records(data) if trees is None else trees
    every = {
        wid: all_branches(data, wid, raw)
        for wid, raw in recs.items()
        if isinstance(raw.get("branch"), str) and not raw.get("removed")
    }
    folders = tuple(store.settled(where.join(data, d)) for d in (outcomes.OUTCOMES, where.VERIFY))
    near: Near = (asking, tells, every)
    memo = ends if ends is not None and None not in folders else None  # None: none is kept
    beside = (folders, *near)
    same = memo is not None and memo.near == beside
    rows, made = _rows(data, sessions, clock, stuck_secs, near, folders, memo, same)
    live = {s["id"]: s for s in sessions if s["alive"]}  # none of `kept`: they ended
    needsinput.refine(data, rows, live, clock, custom, look)
    over = over_budget(data) if live else set()
    for r in (r for r in rows if r["alive"] and r["id"] in over):  # paused at its budget
        why = over_limit(data, r["id"])  # or at a bound: loop/diskcheck
        r["health"] = OVER_BUDGET if why is None else f"over {why} limit"
    rows.sort(key=_BY_ID)
    was = memo.block if memo is not None and same else None
    block = was[2] if was is not None and kept is not None and was[0] is kept[0] else []
    if kept is not None and kept[1] and not block:  # else each as last time
        block, more = _rows(data, kept[1], clock, stuck_secs, near, folders, memo, same)
        block.sort(key=_BY_ID)  # once: a beat only puts the few read now among them
        made.update(more)
    if ends is not None:
        if was is None or was[2] is not block:  # what a row no longer shown was built from
            ends.clear()
            ends.block = (*kept, block) if kept is not None and memo is not None else None
        ends.update(made)
        ends.near = beside if memo is not None else None
        ends.shown = rows
    if not block:
        return rows
    every_row = list(block)
    for r in rows:
        insort(every_row, r, key=_BY_ID)
    return every_row


def _rows(
    data: str,
    sessions: list[dict[str, Any]],
    clock: Clock,
    stuck: int,
    near: Near,
    folders: tuple[object, ...],
    memo: Ends | None,
    same: bool,
) -> tuple[list[dict[str, Any]], Ends]:
    """Each session's row (the pulse's excluded), a finished one's as `memo` kept it while what
    it was built from stays (`same`: all beside it did: its fields, the same object, say the
    rest); and what to keep of the finished ones."""
    asking, tells, every = near
    rows, made = [], Ends()
    for s in sessions:
        wid, alive = s["id"], s["alive"]
        if wid == PULSE:
            continue
        was = None if alive or memo is None else memo.get(wid)
        hit = was if was is not None and same and was[0] is s else None
        mark: tuple[Any, ...] = ()
        if hit is None and memo is not None and not alive:
            mark = (*s.values(), *folders, asking.get(wid), tells.get(wid, 0), every.get(wid))
            hit = (s, *was[1:]) if was is not None and was[1] == mark else None
        row = hit[2] if hit is not None else _row(data, s, clock, stuck, near)
        rows.append(row)
        if not alive and memo is not None:  # as kept: with what a reader added to it
            made[wid] = hit if hit is not None else (s, mark, row)
    return rows, made


def _row(data: str, s: dict[str, Any], clock: Clock, stuck: int, near: Near) -> dict[str, Any]:
    """One worker's row as its own files say now (`near`: the fleet's asks, tells, branches)."""
    (asking, tells, every), wid, alive = near, s["id"], s["alive"]
    rec = None if alive else outcomes.read_record(data, wid)  # how it ended, once recorded
    last, quiet = last_output(s["dir"], alive, clock)
    v = verify_result(where.join(data, where.VERIFY), wid)
    row = {
        "id": wid,
        "state": s["state"],
        "alive": alive,
        "exit_code": s["exit_code"],
        "health": health(wid, alive, asking, stuck, quiet),
        "note": s["note"] if alive else None,
        "verify": ("pass" if v.get("pass") else "fail") if v else None,
        "verify_output": (v or {}).get("output"),
        "started_at": s["started_at"],
        "last_output_at": clock.offset_stamp_at(last) if last else None,
        "last_output_unix": last,
        "ask_since_unix": asking.get(wid),
        "pending_tells": tells.get(wid, 0),
        "label": s["label"],
        "sandboxed": sandboxed(data, wid),
        "contain": s.get("contain"),
        "limit": s.get("limit"),
        "branch": every[wid][0]["branch"] if wid in every else None,
        "branches": every.get(wid, []),  # each repo's (`ls`: first, +count)
        "needs_input": None,
        "outcome": outcomes.outcome_of(rec, s["started_at"]),  # views/outcomes.py
    }
    if not alive and (bound := s.get("limit")):  # the kernel's: sessions/supervisor
        row["health"] = f"hit its {outcomes.BOUND_WORDS.get(bound, bound)} limit"
    return row


AGE_MAX_S = 1000 * 366 * 86400.0  # an age past a millennium is no real one


def age(seconds: float | None) -> str:
    """Compact idle/uptime for tables: 45s, 12m, 3h, 2d (— when unknown)."""
    if seconds is None or not -AGE_MAX_S < seconds < AGE_MAX_S:
        return "—"  # NaN, an infinity or past any real age: none to show
    s = int(max(0.0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
