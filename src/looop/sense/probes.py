"""System sensors: in-process probes that never raise and never time out."""

from __future__ import annotations

import os
from bisect import insort
from collections.abc import Callable, Mapping
from dataclasses import replace
from operator import itemgetter
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.core.pool import Pool, Run
from looop.core.proc import Tail, spawn
from looop.core.readings import Reading
from looop.home import store
from looop.home.boxfolder import Folder
from looop.home.clock import offset_stamp
from looop.home.config import Knobs
from looop.home.errors import CorruptState
from looop.home.stamps import parse_utc
from looop.human.mailbox import pending_read
from looop.remote import rooms
from looop.sessions.state import Session, list_sessions
from looop.spend.spent import spent
from looop.spend.usagewindows import read_held
from looop.views.workerrows import Ends, tree_records
from looop.workers.needsinput import fleet_view
from looop.workers.treerecord import Tree, WorktreeError, from_record, tree_env
from looop.workers.treework import STATUS_ARGS

Probe = Callable[[Ctx], Any]
STATUS_TIMEOUT_S = 5.0  # a stuck git must not hold the beat
STATUS_GRACE_S = 0.5  # how long a finished `git status` may leave its pipes held open
STATUS_KEEP = 4096  # bytes of `git status` kept: only whether it printed anything matters


def _listing(folder: Path, suffix: str) -> list[Path]:
    """Top-level regular files with this suffix, sorted; dot files (temps) excluded."""
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        p for p in entries if p.suffix == suffix and not p.name.startswith(".") and p.is_file()
    )


def probe_claims(ctx: Ctx) -> Any:
    """Live leases; a claim being written (or garbled) shows as null, never hides. claims/ is
    a folder a box can write: a bounded listing that follows no symlink (boxfolder)."""
    items: list[dict[str, Any]] = []
    with Folder(ctx.paths.claims) as d:
        for name in d.names(".json"):
            try:
                claim = d.read_json(name)
            except CorruptState:
                claim = None
            items.append({"claim": claim, "name": name[:-5]})
        return _noted(ctx, {"signal": items}, d.note("claims"))


def _noted(ctx: Ctx, reading: dict[str, Any], note: str | None) -> dict[str, Any]:
    """A reading that says what its listing left out, in its detail and once to the human."""
    if note is not None:
        reading.setdefault("detail", {})["note"] = note
        if ctx.first_time(note):
            ctx.events.emit("warn", "box.refused", note)
    return reading


def _last_acted(ctx: Ctx) -> dict[str, int]:
    """goal id -> unix seconds; missing or corrupt means no activity (fairness data only)."""
    try:
        raw = store.read_json_object(ctx.paths.goal_activity)
    except CorruptState:
        return {}
    out: dict[str, int] = {}
    for goal_id, ts in (raw or {}).items():
        if isinstance(ts, int | float) and not isinstance(ts, bool) and ts == ts:
            out[goal_id] = int(ts)
    return out


def _age(now: float, since: float | None) -> int | None:
    return max(0, int(now - since)) if since is not None else None


def probe_goals(ctx: Ctx) -> Any:
    """When each goal was last acted on (and v1.0's `age_s`, seconds since); detail only, so
    it never wakes the loop."""
    acted = _last_acted(ctx)
    now = ctx.clock.now()
    goals: dict[str, Any] = {}
    for p in _listing(ctx.paths.goals, ".md"):
        last = acted.get(p.stem)
        goals[p.stem] = {
            "last_acted": offset_stamp(ctx.clock.local(last)) if last is not None else None,
            "last_acted_unix": last,
            "age_s": _age(now, last),
        }
    return {"detail": {"goals": goals}, "signal": {}}


def probe_sessions(
    ctx: Ctx,
    knobs: Knobs | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
    fleet: list[Session] | None = None,
    ends: Ends | None = None,
) -> Any:
    """The worker fleet: transitions, health, live flags and verify results wake the loop.
    `knobs`: the beat's (without them the config is read now); `custom`: the runners' own
    needs-input patterns (workers/needsinput); `fleet`: the sessions as the beat's
    housekeeping listed them (one listing a beat; a transition since wakes the next beat),
    None to list them now; `ends`: the pulse's memory of its finished workers' own files
    (views/workerrows)."""
    stuck = (knobs if knobs is not None else ctx.knobs()).num("worker_stuck_secs")
    trees = tree_records(str(ctx.paths.data))  # read once: the rows' branches and git status
    listed = fleet if fleet is not None else list_sessions(ctx.paths.data)
    rows = fleet_view(ctx, listed, stuck, trees, custom, ends)
    hosts: list[dict[str, Any]] | None = None
    if (ctx.paths.hosts).is_dir():
        rows, hosts = rooms().with_hosts(ctx, rows, stuck, knobs)
    signal, detail, fresh = _made(rows, ctx.clock.now(), ends, hosts is None)
    # in detail: spend grows with every model call, a worker's edits come and go all the
    # time: neither may wake the loop by itself (each a new entry: a kept one is shared)
    for wid, got in spent(str(ctx.paths.data)).items() if rows else ():
        if wid in detail:
            usd = "unmetered" if got.usd is None else round(got.usd, 4)
            detail[wid] = {**detail[wid], "spend_usd": usd}
    for r in fresh:  # on a host its CLI's records stay there: the meter cannot read them
        if r.get("host") and "spend_usd" not in detail[r["id"]]:
            detail[r["id"]] = {**detail[r["id"]], "spend_usd": "unmetered"}
    mine = {wid: trees[wid] for wid in detail.keys() & trees.keys()}
    for wid, tree in sensed(ctx, mine).items():
        detail[wid] = {**detail[wid], **tree}
    out: dict[str, Any] = {"detail": {"count": len(rows), "workers": detail}, "signal": signal}
    if hosts:  # each place's load: in detail (a worker's start or end wakes the loop anyway)
        out["detail"]["hosts"] = hosts
    held, _ = read_held(str(ctx.paths.data))
    if held:  # starts held for a usage window: the decider sees them, none wakes it
        out["detail"]["scheduled"] = {
            str(h["id"]): {
                "runner": h.get("runner"),
                "until": ctx.clock.offset_stamp_at(float(h["until"])),
                "why": h.get("reason"),
            }
            for h in held
        }
    return out


def _made(
    rows: list[dict[str, Any]], now: float, ends: Ends | None, own: bool = True
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The rows' signal (in their order: by id) and detail entries, and the rows not of the
    block (Ends.block: the finished workers a listing passed unread), whose entries are made
    once while its rows stay: a beat's cost stays flat in the workers kept. `own`: `rows` are
    the fleet's rows as built (none from a host joined them)."""
    block = ends.block if ends is not None else None
    if ends is None or block is None:
        made = [_entries(r, now, ends) for r in rows]
        return [m[0] for m in made], {r["id"]: m[1] for r, m in zip(rows, made, strict=True)}, rows
    if ends.entries is None or ends.entries[0] is not block[2]:
        made = [_entries(r, now, ends) for r in block[2]]
        ids = frozenset(r["id"] for r in block[2])
        entries = [m[0] for m in made], {r["id"]: m[1] for r, m in zip(block[2], made, strict=True)}
        ends.entries = (block[2], ids, *entries)
    _, ids, signal, detail = ends.entries
    shown = ends.shown if own else None
    fresh = shown if shown is not None else [r for r in rows if r["id"] not in ids]
    made = [_entries(r, now, ends) for r in fresh]
    signal = list(signal)  # the block's, by id: the few made now go among them
    for m in made:
        insort(signal, m[0], key=itemgetter("id"))
    return signal, detail | {r["id"]: m[1] for r, m in zip(fresh, made, strict=True)}, fresh


def _entries(r: dict[str, Any], now: float, ends: Ends | None) -> tuple[dict[str, Any], ...]:
    """A worker's signal and detail entries (never changed once made: the beat replaces one
    it adds to); a finished one's made once while `ends` (the pulse's memory) keeps its row:
    nothing in them ages."""
    if ends is None or (hit := ends.get(r["id"])) is None or hit[2] is not r:
        return _signal_entry(r), _detail_entry(r, now)
    if len(hit) == 3:
        hit = ends[r["id"]] = (*hit, _signal_entry(r), _detail_entry(r, now))
    return hit[3], hit[4]


def _signal_entry(r: dict[str, Any]) -> dict[str, Any]:
    """What of a worker wakes the loop when it changes: state, exit, health, flags, verify,
    its outcome."""
    entry = {k: r[k] for k in ("id", "state", "exit_code", "health")}
    if r.get("host"):
        entry["host"] = r["host"]
    # outcome: how it ended (views/outcomes.py): stalled, landed, …
    return entry | {k: r[k] for k in ("note", "verify", "outcome") if r.get(k) is not None}


def _detail_entry(r: dict[str, Any], now: float) -> dict[str, Any]:
    """What of a worker the prompt shows but that never wakes the loop by itself."""
    alive, at = r["alive"], r["started_at"]
    d = {
        **{k: r[k] for k in ("started_at", "last_output_at", "verify_output") if r[k] is not None},
        # v1.0's ages in seconds as of this beat; the prompt lists them apart (core/readings)
        "idle_s": _age(now, r["last_output_unix"]) if alive else None,
        "uptime_s": _age(now, parse_utc(at)) if alive and isinstance(at, str) else None,
        "ask_age_s": _age(now, r["ask_since_unix"]) if r["health"] == "waiting-ask" else None,
        "pending_tells": r["pending_tells"],
    }
    if r.get("needs_input"):  # what its screen says; the health alone is in the signal
        d["needs_input"] = r["needs_input"]
    if r.get("sandboxed"):  # in detail, not signal: it never changes mid-run
        d["sandboxed"] = True
    if r.get("host") and r.get("branch"):  # a checkout on a host: its branch, as here
        d["branch"] = r["branch"]
    return d


def probe_asks(ctx: Ctx) -> Any:
    """Pending ask ids: a new question wakes the loop once; the text stays out of the hash."""
    rows, note = pending_read(ctx.paths.asks, ctx.paths.answers)
    reading = {"detail": {"count": len(rows)}, "signal": sorted(str(r.get("id")) for r in rows)}
    return _noted(ctx, reading, note)


def probe_schedules(ctx: Ctx) -> Any:
    """Each schedule's due-ness: it changes exactly when one falls due (once per period)."""
    try:
        with os.scandir(ctx.paths.schedules) as it:
            empty = next(it, None) is None
    except OSError:
        empty = True  # missing (or unreadable): no schedule can be read from it either
    if empty:
        return {"detail": {}, "signal": {}}  # what schedules.probe says of no schedules
    # lazy: cron and zones (~8 ms of a skip beat): only when a schedule exists
    from looop.human import schedules

    return schedules.probe(ctx.paths.schedules, ctx.clock, ctx.paths.schedule_marks)


def default_probes(
    knobs: Knobs | None = None,
    custom: dict[str, tuple[str, ...]] | None = None,
    fleet: list[Session] | None = None,
    ends: Ends | None = None,
) -> dict[str, Probe]:
    """The system probes; `knobs` (a beat's) spare the sessions probe a config read; `custom`:
    the runners' needs-input patterns from the beat's config; `fleet`: the beat's listing of
    its sessions, spared the sessions probe; `ends`: the pulse's memory for it."""
    return {
        "sys-asks": probe_asks,
        "sys-claims": probe_claims,
        "sys-goals": probe_goals,
        "sys-schedules": probe_schedules,
        "sys-sessions": lambda ctx: probe_sessions(ctx, knobs, custom, fleet, ends),
    }


def run_probes(
    ctx: Ctx, probes: Mapping[str, Probe], drawn: dict[str, Reading] | None = None
) -> list[Reading]:
    """Each probe writes snapshots/<name>.json; a crash becomes an error snapshot. `drawn`:
    the pulse's last reading of each, updated: a value equal to last beat's keeps its bytes
    (comparing is a twentieth of encoding a fleet of 300; nothing changes a reading's value
    once made, and a probe's fields keep their types from beat to beat)."""
    readings: list[Reading] = []
    for name, probe in probes.items():
        started = ctx.clock.monotonic()
        error: str | None = None
        try:
            value = probe(ctx)
            last = drawn.get(name) if drawn is not None else None
            if last is not None and last.body is not None and last.value == value:
                got = Reading(name, value, True, body=last.body)
            else:
                got = Reading.of(name, value)
        except Exception as e:
            error = f"probe {name} failed: {type(e).__name__}: {e}".splitlines()[0][:300]
            got = Reading.of(
                name, {"detail": {"message": error}, "signal": {"error": "probe-failed"}}
            )
        body = got.to_json()
        assert body is not None  # Reading.of always has its bytes
        unrecorded = False
        try:
            store.write_if_changed(ctx.paths.snapshots / f"{name}.json", body)
        except OSError as e:
            error, unrecorded = f"cannot write snapshots/{name}.json: {e.strerror or e}", True
        secs = round(max(0.0, ctx.clock.monotonic() - started), 3)
        if unrecorded:  # the file on disk is stale: the beat ends on it
            got = Reading(name, ok=False, secs=secs, error=error, unrecorded=True)
        if drawn is not None:
            drawn[name] = got
        readings.append(replace(got, ok=error is None, secs=secs, error=error))
    return readings


def sensed(ctx: Ctx, records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, object]]:
    """For sys-sessions: each worker's branch and whether its worktree holds uncommitted
    work (None: git could not tell), from the worktree records the fleet already read
    (fleet.tree_records). The `git status` runs go at once, each with its own deadline."""
    out: dict[str, dict[str, object]] = {}
    live: list[Tree] = []
    for wid, raw in records.items():
        if (tree := from_record(raw)) is None:
            continue
        out[wid] = {"branch": tree.branch}
        if not tree.removed and os.path.isdir(tree.path):
            live.append(tree)
    for wid, dirty in _dirty_all(ctx, live, STATUS_TIMEOUT_S).items():
        out[wid]["uncommitted"] = dirty
    return out


def _dirty_all(ctx: Ctx, trees: list[Tree], timeout: float) -> dict[str, bool | None]:
    """is_dirty for many worktrees at once, in one Pool: a run past its deadline has its
    whole process group killed and reads as unknown (None)."""

    got: dict[str, bool | None] = {t.wid: None for t in trees}
    if not trees:
        return got
    pool = Pool(ctx.clock, STATUS_GRACE_S)
    try:
        for tree in trees:
            started = ctx.clock.monotonic()
            try:
                env = tree_env(ctx.env, tree, timeout)
                argv = ["git", "--no-pager", "-C", tree.path, *STATUS_ARGS]
                proc = spawn(argv, cwd=ctx.paths.data, env=env)
            except (OSError, WorktreeError):  # git missing, or its config unreadable: unknown
                continue
            out, err = Tail(STATUS_KEEP), Tail(STATUS_KEEP)
            pool.add(Run(proc, started + timeout, out, err, label=tree.wid, started=started))
        for run in pool.finished():
            if run.exit().ok:
                got[run.label] = bool(run.out.data().strip())
    finally:
        pool.abandon()
    return got
