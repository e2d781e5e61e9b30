"""Telling the human once as something joins the needs-you queue (home/needs): a worker at its
CLI's approval prompt or idle at its input box, at its provider's usage limit, paused at a
bound, or a start held for a usage window; here or on an SSH or Kubernetes host alike.

Once per entry, never per beat: the queue's refs told are latched in TOLD until they leave
the queue (entering again tells again). Two kinds are told where they happen, not here: an
ask as it is made (cli/mailbox, workers/review) and a worker paused at its spend budget
(loop/workmeter, with what it spent)."""

from __future__ import annotations

from typing import Any

from looop.core.context import Ctx
from looop.home import store, where
from looop.home.config import Config
from looop.home.errors import CorruptState
from looop.human.notify import notify
from looop.views.needs import Need, worker_needs
from looop.views.workerrows import OVER_BUDGET

TOLD = ".needs-told.json"  # in <data>: the queue's refs the human was told about (latch)
SCREEN = ("approval", "idle", "input")  # the needs-input kinds (a verdict on the screen)


def _told_at_source(n: Need, rows: dict[str, dict[str, Any]]) -> bool:
    """A spend budget's pause is told by the meter as it holds the worker (its spend and
    budget in the words); a bound's pause (disk) is told here."""
    return n.kind == "budget" and (rows.get(n.worker) or {}).get("health") == OVER_BUDGET


def to_tell(data: str, items: list[Need]) -> list[Need]:
    """The items not told yet: latched in TOLD by ref until they leave the queue, so a
    redraw or the next beat never tells again; a lost latch tells once more."""
    path = where.join(data, TOLD)
    try:
        told = store.read_json_object(path) or {}
    except CorruptState:
        told = {}
    now_in = {n.ref: n for n in items}
    new = [n for ref, n in sorted(now_in.items()) if ref not in told]
    keep = {ref: said for ref, said in told.items() if ref in now_in}
    keep.update({n.ref: n.what for n in new})
    if keep != told:
        try:
            if keep:
                store.write_json(path, keep)
            else:
                store.remove(path)
        except OSError:
            pass  # cannot latch: telling again beats staying silent
    return new


def _say(ctx: Ctx, cfg: Config | None, n: Need, row: dict[str, Any]) -> None:
    """One notification (and, for the beat's own verdicts, its event) for a new entry."""
    who = f"{n.worker}@{n.host}" if n.host else n.worker
    if n.kind in SCREEN:
        said = row.get("needs_input")
        msg = f"worker {who} needs input: {said or 'its screen waits'}"
        ctx.events.emit("warn", "worker.needs_input", msg, id=n.worker)
        ctx.events.record("worker_needs_input", id=n.worker, said=said)
        notify(ctx, f"{msg}\nanswer: {n.answer}", n.worker, "needs-input", cfg)
        return
    if n.kind == "limited":
        health = row.get("health")
        msg = f"worker {who} is {health}: it goes on by itself then (looop needs)"
        ctx.events.emit("warn", "worker.limited", msg, id=n.worker)
        ctx.events.record("worker_limited", id=n.worker, health=health)
        notify(ctx, msg, n.worker, "limited", cfg)
        return
    # a bound's pause, a held start: their events were said where they happened
    notify(ctx, f"worker {who}: {n.what}\nanswer: {n.answer}", n.worker, n.kind, cfg)


def tell(ctx: Ctx, cfg: Config | None, rows: list[dict[str, Any]]) -> int:
    """After the beat sensed (`rows`: the fleet as its sys-sessions reading and the held
    starts say it): notify once per entry that joined the queue; how many were told."""
    by_id = {str(r.get("id")): r for r in rows}
    items = [n for n in worker_needs(rows) if not _told_at_source(n, by_id)]
    new = to_tell(str(ctx.paths.data), items)
    for n in new:
        _say(ctx, cfg, n, by_id.get(n.worker) or {})
    return len(new)
