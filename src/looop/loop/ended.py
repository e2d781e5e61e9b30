"""The beat records each worker's outcome once, when it first finds the worker ended (its
verify, if it has one, run: a pending verify waits a beat): derived by views/outcomes.py's one
table, written to outcomes/<id>.json, said in journal.md, events.jsonl (`worker_ended`, which
/metrics counts) and the pulse's output. A worker away from home gets its outcome the same way
once the fleet rows the beat reads from its host saw it over (record_far_ends). A worker that
failed the same way worker_stall_after times in a row is said stalled once, a notification
too."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from looop.act.journal import append_journal
from looop.act.outcome import ExecError
from looop.core.context import Ctx
from looop.home import store, where
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.home.stamps import utc_stamp_ms
from looop.human.notify import notify
from looop.sessions.logs import log_tail
from looop.sessions.state import Listing, Session
from looop.spend.spent import held_for_day, over_budget, over_limit
from looop.spend.usagewindows import seen_runs
from looop.views import outcomes
from looop.views.outcomes import End, Outcome
from looop.views.workerrows import PULSE, verify_result, waiting_workers
from looop.workers.treerecord import WorktreeError, git_in

EndOf = Callable[[dict[str, Any]], End]  # how a worker ended, from the facts read once


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


def _over(data: str, wid: str) -> str:
    """What its over mark holds it at: a bound ("disk"), the daily fleet budget ("daily")
    or its own spend budget ("budget")."""
    return over_limit(data, wid) or ("daily" if held_for_day(data, wid) else "budget")


def _end_of(data: str, s: Session, facts: dict[str, Any]) -> End:
    wid = s.id
    over = _over(data, wid) if wid in facts["over"] else None
    return End(
        s.state,
        s.exit_code,
        limit=s.limit,
        verify=verify_result(where.join(data, where.VERIFY), wid),
        over=over,
        window=facts["seen"].get(wid) == s.started_at,
        asking=wid in facts["asking"],
        last_line=_last_line(data, wid),
    )


def record_ends(
    ctx: Ctx, knobs: Knobs, cfg: Config | None, listed: list[Session], recs: dict[str, Any]
) -> list[str]:
    """Every worker of `listed` (the beat's listing) that ended since the last beat gets its
    outcome; the ids recorded. One with an outcome for its run in `recs` (the beat's records)
    is passed over; none of a worker's files is read: the listing says how it ended."""
    data, recorded = str(ctx.paths.data), outcomes.outcome_of

    def unrecorded(sessions: Iterable[Session]) -> list[Session]:
        return [s for s in sessions if s.finished and not recorded(recs.get(s.id), s.started_at)]

    if isinstance(listed, Listing) and listed.block.recorded is recs:  # in these very records
        new = unrecorded(listed.fresh)
    else:
        new = unrecorded(listed)
        if isinstance(listed, Listing) and not unrecorded(s for s in listed.block if s.id != PULSE):
            listed.block.recorded = recs
    ended = sorted((s for s in new if s.id != PULSE), key=lambda s: s.id)  # a kept one: no sort
    found = [(s.id, s.started_at, s.last_change, partial(_end_of, data, s)) for s in ended]
    return _record(ctx, knobs, cfg, found)


def _record(
    ctx: Ctx, knobs: Knobs, cfg: Config | None, found: Sequence[tuple[str, str, str, EndOf]]
) -> list[str]:
    """Each (id, generation, when it ended, how) not recorded yet nor waiting on its verify:
    its outcome written and said; the ids recorded."""
    data = str(ctx.paths.data)
    facts: dict[str, Any] | None = None
    done: list[str] = []
    for wid, gen, ended_at, end_of in found:
        prev = outcomes.read_record(data, wid)
        if outcomes.outcome_of(prev, gen) is not None or _pending_verify(data, wid):
            continue
        if facts is None:  # read once, and only when some worker ended
            asks, answers = where.join(data, where.ASKS), where.join(data, where.ANSWERS)
            facts = {
                "over": over_budget(data),
                "seen": seen_runs(data),
                "asking": waiting_workers(asks, answers),
            }
        stall = knobs.num("worker_stall_after")
        rec = outcomes.next_record(prev, wid, gen, end_of(facts), stall, ended_at)
        outcomes.write_record(data, rec)
        _say(ctx, knobs, cfg, rec, newly=bool(rec["stalled"]) and not (prev or {}).get("stalled"))
        done.append(wid)
    return done


def promote_proposed(ctx: Ctx, recs: dict[str, dict[str, Any]]) -> list[str]:
    """Each worker proposed (its pull request open) whose base now holds its commit, in its
    repo's branch or origin's: landed. Of `recs` (the beat's records), git only for those
    proposed."""
    data = str(ctx.paths.data)

    def holds(repo: str, into: str, commit: str) -> bool:
        refs = (f"refs/heads/{into}", f"refs/remotes/origin/{into}")
        try:
            return any(
                git_in(ctx.env, repo, "merge-base", "--is-ancestor", commit, ref).returncode == 0
                for ref in refs
            )
        except WorktreeError:
            return False

    ids = [w for w, rec in recs.items() if rec.get("outcome") == Outcome.PROPOSED]
    done = [w for w in ids if outcomes.promote(data, w, holds)]
    for wid in done:
        ctx.events.emit("ok", "worker.ended", f"worker {wid}: proposed → landed", id=wid)
        ctx.events.record("worker_ended", id=wid, outcome="landed", was="proposed")
    return done


def _far_unrecorded(
    data: str, recs: dict[str, Any], memo: store.Folders | None
) -> dict[str, dict[str, Any]]:
    """The home's records of workers away (hosts/workers/<id>.json; an unreadable one: `host
    ls` says it, its worker gets no outcome) that say the worker is over, with no outcome for
    that run in `recs` (the beat's outcome records); `memo`: the pulse's (store.json_objects)."""
    far = store.json_objects(where.host_workers(data), memo)
    return {
        wid: rec
        for wid, rec in far.items()
        if rec.get("over") is True and wid != PULSE and not _recorded(recs, wid, rec)
    }


def _recorded(recs: dict[str, Any], wid: str, rec: dict[str, Any]) -> bool:
    return outcomes.outcome_of(recs.get(wid), str(rec.get("started_at") or "")) is not None


def _far_end(data: str, wid: str, rec: dict[str, Any], facts: dict[str, Any]) -> End:
    """What the home knows of a worker away's end: how it ended and its exit code as its host
    said them (remote/hosts.mark_over), a bound it was at, its verify (run on its host,
    recorded here), its spend budget and its asks (both the home's). Not known here: a usage
    window (its CLI's output stays on its host) and its last line (so is its log)."""
    limit = rec.get("limit") if isinstance(rec.get("limit"), str) else None
    code = rec.get("exit_code")
    over = _over(data, wid) if wid in facts["over"] else None
    return End(
        "killed" if limit or rec.get("ended") == "killed" else "exited",
        code if type(code) is int else None,
        limit=limit,
        verify=verify_result(where.join(data, where.VERIFY), wid),
        over=over,
        asking=wid in facts["asking"],
    )


def record_far_ends(
    ctx: Ctx, knobs: Knobs, cfg: Config | None, recs: dict[str, Any], memo: store.Folders | None
) -> list[str]:
    """record_ends for the workers away from home (SSH hosts, Kubernetes pods): each seen
    over by the fleet rows the beat reads (remote/; its sensor reads them after this step, so
    an end found there is recorded the beat after, as a far verify runs), its outcome recorded
    once the same way, as ended when the beat saw it (the host keeps when). `recs`: the
    beat's outcome records; `memo`: the pulse's."""
    data = str(ctx.paths.data)
    seen = utc_stamp_ms(ctx.clock.now())
    found = [
        (wid, str(rec.get("started_at") or ""), seen, partial(_far_end, data, wid, rec))
        for wid, rec in _far_unrecorded(data, recs, memo).items()
    ]
    return _record(ctx, knobs, cfg, found)


def _say(ctx: Ctx, knobs: Knobs, cfg: Config | None, rec: dict[str, Any], newly: bool) -> None:
    wid, outcome = rec["id"], rec["outcome"]
    line = f"worker {wid} ended: {outcomes.short(outcome)} — {rec['why']}"
    good = outcome in (Outcome.LANDED, Outcome.PROPOSED, Outcome.VERIFIED) or (
        outcome == Outcome.EXITED and rec["exit_code"] == 0
    )
    ctx.events.emit("ok" if good else "warn", "worker.ended", line, id=wid, outcome=outcome)
    # an event, not a journal line: the journal holds moves (RULE 1); `journal --all` shows both
    ctx.events.record(
        "worker_ended",
        id=wid,
        outcome=outcome,
        exit_code=rec["exit_code"],
        streak=rec["streak"],
        line=line,
    )
    if newly:
        msg = (
            f"worker {wid} is stalled: {rec['why']} — the decider may not start or restart it "
            f"until a human clears it: `looop worker unstall {wid}`"
        )
        ctx.events.emit("warn", "worker.stalled", msg, id=wid, streak=rec["streak"])
        ctx.events.record("worker_stalled", id=wid, streak=rec["streak"], why=rec["why"])
        notify(ctx, msg, wid, "stalled", cfg)


def clear_stall(ctx: Ctx, knobs: Knobs, wid: str, actor: str) -> dict[str, Any]:
    """A human clears a stalled worker (`looop worker unstall`, the web): its streak starts
    over, the decider may start it again; recorded and journaled so the decider reads that
    a human looked. The record it had; LooopError when it was not stalled."""
    data = str(ctx.paths.data)
    rec = outcomes.stalled(data, wid)
    if rec is None or not outcomes.unstall(data, wid):
        raise LooopError(f"worker {wid} is not stalled — `looop ls --all` shows how it ended")
    why = str(rec.get("why") or "the same failure again")  # looop's words, none of the worker's
    ctx.events.record("worker_unstalled", id=wid, why=why, actor=actor)
    try:
        append_journal(ctx, knobs, f"{actor}: cleared worker {wid}'s stall (it was: {why})")
    except ExecError as e:  # cleared all the same: the journal is said unwritable
        ctx.events.emit("warn", "worker.stalled", str(e), id=wid)
    return rec
