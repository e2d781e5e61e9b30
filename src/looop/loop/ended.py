"""The beat records each worker's outcome once, when it first finds the worker ended (its
verify, if it has one, run: a pending verify waits a beat): derived by home/outcomes.py's one
table, written to outcomes/<id>.json, said in journal.md, events.jsonl (`worker_ended`, which
/metrics counts) and the pulse's output. A worker that failed the same way worker_stall_after
times in a row is said stalled once, a notification too."""

from __future__ import annotations

import os
from typing import Any

from looop.act.journal import append_journal
from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home import outcomes, where
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.home.logs import log_tail
from looop.home.outcomes import End, Outcome
from looop.home.sessionfiles import STATUS, list_light, session_ids
from looop.home.spent import over_budget, over_limit
from looop.home.usagewindows import seen_runs
from looop.home.workerrows import PULSE, verify_result, waiting_workers
from looop.human.notify import notify


def _pending_verify(data: str, wid: str) -> bool:
    """It has a verify command and no result yet: its outcome waits for it."""
    vdir = where.join(data, where.VERIFY)
    return os.path.exists(where.join(vdir, f"{wid}.cmd")) and not os.path.exists(
        where.join(vdir, f"{wid}.json")
    )


def _last_line(data: str, wid: str) -> str:
    try:
        return log_tail(data, wid, 1).strip()
    except (LooopError, OSError):
        return ""


def _end_of(data: str, s: dict[str, Any], facts: dict[str, Any]) -> End:
    wid = s["id"]
    over = None
    if wid in facts["over"]:
        over = over_limit(data, wid) or "budget"
    return End(
        s["state"],
        s["exit_code"],
        limit=s.get("limit"),
        verify=verify_result(where.join(data, where.VERIFY), wid),
        over=over,
        window=facts["seen"].get(wid) == s["started_at"],
        asking=wid in facts["asking"],
        last_line=_last_line(data, wid),
    )


def _unrecorded(data: str) -> list[str]:
    """The sessions whose status.json changed since their outcome record was written (or
    that have none): two stats each, so a beat over many finished workers reads none of them
    again. A tie reads it again (a coarse clock), which only costs the read."""
    out = []
    base = where.join(data, where.SESSIONS)
    for sid in session_ids(data):
        try:
            changed = os.stat(where.join(where.join(base, sid), STATUS)).st_mtime_ns
        except OSError:
            continue
        try:
            recorded = os.stat(outcomes.record_path(data, sid)).st_mtime_ns
        except OSError:
            recorded = -1
        if recorded <= changed:
            out.append(sid)
    return out


def record_ends(ctx: Ctx, knobs: Knobs, cfg: Config | None) -> list[str]:
    """Every worker that ended since the last beat gets its outcome; the ids recorded."""
    data = str(ctx.paths.data)
    ended = [
        s
        for s in list_light(data, ids=_unrecorded(data))
        if s["id"] != PULSE and not s["alive"] and s["state"] in ("exited", "killed")
    ]
    facts: dict[str, Any] | None = None
    done: list[str] = []
    for s in sorted(ended, key=lambda s: str(s["id"])):
        wid, gen = str(s["id"]), str(s["started_at"])
        prev = outcomes.read_record(data, wid)
        if outcomes.outcome_of(prev, gen) is not None or _pending_verify(data, wid):
            continue
        if facts is None:  # read once, and only when some worker ended
            facts = {
                "over": over_budget(data),
                "seen": seen_runs(data),
                "asking": waiting_workers(
                    where.join(data, where.ASKS), where.join(data, where.ANSWERS)
                ),
            }
        end = _end_of(data, s, facts)
        ended_at = str(s["last_change"])
        rec = outcomes.next_record(prev, wid, gen, end, knobs.num("worker_stall_after"), ended_at)
        outcomes.write_record(data, rec)
        _say(ctx, knobs, cfg, rec, newly=bool(rec["stalled"]) and not (prev or {}).get("stalled"))
        done.append(wid)
    return done


def _say(ctx: Ctx, knobs: Knobs, cfg: Config | None, rec: dict[str, Any], newly: bool) -> None:
    wid, outcome = rec["id"], rec["outcome"]
    line = f"worker {wid} ended: {outcomes.short(outcome)} — {rec['why']}"
    good = outcome in (Outcome.LANDED, Outcome.VERIFIED) or (
        outcome == Outcome.EXITED and rec["exit_code"] == 0
    )
    ctx.events.emit("ok" if good else "warn", "worker.ended", line, id=wid, outcome=outcome)
    ctx.events.record(
        "worker_ended", id=wid, outcome=outcome, exit_code=rec["exit_code"], streak=rec["streak"]
    )
    try:
        append_journal(ctx, knobs, line)
    except ExecError as e:  # the record and the event stand; the journal is said unwritable
        ctx.events.emit("warn", "worker.ended", str(e), id=wid, outcome=outcome)
    if newly:
        msg = (
            f"worker {wid} is stalled: {rec['why']} — the decider may not start or restart it "
            f"until a human clears it: `looop worker unstall {wid}`"
        )
        ctx.events.emit("warn", "worker.stalled", msg, id=wid, streak=rec["streak"])
        ctx.events.record("worker_stalled", id=wid, streak=rec["streak"], why=rec["why"])
        notify(ctx, msg, wid, "stalled", cfg)
