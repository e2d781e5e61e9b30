"""Pending asks as the decider sees them: LIVE (a worker waits), STRANDED (it is gone) or
LANDING (a landing it proposed waits on the human's review, workers/reviewrounds.py); and
`looop wait` (no id): block until the world needs a human; exit 2 when no pulse runs."""

from __future__ import annotations

import select
from typing import Any

from looop.core.context import Ctx
from looop.home import locks
from looop.home.boxfolder import Folder
from looop.home.errors import CorruptState
from looop.human.mailbox import pending
from looop.loop.world import read_world
from looop.sessions.state import SessionError, get_session
from looop.workers import reviewrounds


def tag(ctx: Ctx, rec: dict[str, Any]) -> str:
    worker = str(rec.get("worker"))
    got = reviewrounds.read(ctx, worker) if isinstance(rec.get("land"), dict) else None
    if got is not None and rec.get("id") == got.ask:  # the landing it proposed
        return "LANDING"
    try:
        return "LIVE" if get_session(ctx.paths.data, str(rec.get("worker"))).alive else "STRANDED"
    except (SessionError, OSError):
        return "STRANDED"


ANSWERED_S = 86400  # an answer is shown to the decider for a day (it is an event, no move)
ANSWERED_MAX = 10


def answered(ctx: Ctx) -> list[str]:
    """The last day's answers, newest first: what the journal no longer says (RULE 1)."""
    got: list[tuple[int, str]] = []
    with Folder(ctx.paths.answers) as box:
        for name in box.names(".json"):
            try:
                rec = box.read_object(name) or {}
            except CorruptState:
                continue
            ts, text = rec.get("ts"), rec.get("answer")
            if isinstance(ts, int) and isinstance(text, str) and ctx.clock.now() - ts < ANSWERED_S:
                got.append((ts, f"- {name[:-5]} answered: {' '.join(text.split())[:500]}"))
    return [line for _, line in sorted(got, reverse=True)[:ANSWERED_MAX]]


def asks_section(ctx: Ctx) -> str | None:
    """The PENDING ASKS body (and the last day's answers), or None when there are none."""
    rows = pending(ctx.paths.asks, ctx.paths.answers)
    said = answered(ctx)
    if not rows:
        return "\n".join(["(none pending)", *said]) if said else None
    lines = []
    for r in rows:
        status = tag(ctx, r)
        opts = f" (options: {', '.join(r.get('options') or [])})" if r.get("options") else ""
        ref = f" (ref: {r['reference']})" if r.get("reference") else ""
        prompt = str(r.get("prompt", ""))[:2000]
        lines.append(f"- {r.get('id')} [{status}] from {r.get('worker')}: {prompt}{opts}{ref}")
    lines.append(
        "LIVE: the worker is blocked waiting for a human — relay it "
        "(send_notification with its id) once, never answer it yourself or start a "
        "duplicate worker. STRANDED: its worker is gone — re-dispatch a fresh worker "
        "for the goal. LANDING: a landing you proposed waits on the human's review — they "
        "land it or decline; never propose it again or relay it."
    )
    return "\n".join(lines + said)


CATEGORIES = ("asks", "journal", "playbook", "goals", "snapshots")


def fingerprint(ctx: Ctx) -> dict[str, Any]:
    items = read_world(ctx.paths).items
    try:
        st = ctx.paths.journal.stat()
        journal: Any = (st.st_size, st.st_mtime_ns)
    except OSError:
        journal = None
    return {
        "asks": sorted(str(r.get("id")) for r in pending(ctx.paths.asks, ctx.paths.answers)),
        "journal": journal,
        "playbook": items.get("playbook"),
        "goals": {k: v for k, v in items.items() if k.startswith("goal:")},
        "snapshots": {k: v for k, v in items.items() if k.startswith("snap:")},
    }


def wait_for_human(
    ctx: Ctx, only_asks: bool, actionable: bool, timeout_s: float | None, poll_s: float
) -> tuple[int, list[str], list[dict[str, Any]]]:
    """(exit code, changed categories, pending asks): 0 changed, 2 pulse down, 124 timeout."""
    watch = ("asks",) if only_asks else ("asks", "journal") if actionable else CATEGORIES
    deadline = None if timeout_s is None else ctx.clock.monotonic() + timeout_s
    base = fingerprint(ctx)
    while True:
        asks = pending(ctx.paths.asks, ctx.paths.answers)
        if not locks.flock_held(ctx.paths.lock_file):
            return 2, ["pulse-down"], asks
        if asks:
            return 0, ["asks"], asks
        now = fingerprint(ctx)
        changed = [c for c in watch if now[c] != base[c]]
        if changed:
            return 0, changed, asks
        if deadline is not None and ctx.clock.monotonic() >= deadline:
            return 124, [], asks
        select.select([], [], [], poll_s)  # files written by other processes: poll, bounded
