"""What each worker spends, read from its agent CLI's own records each beat.

The preset CLIs keep a record of every model call in their own files (JSONL holding each
message's tokens or cost, running token totals, or a SQLite store): where, and in what shape,
each one's profile says (RunnerProfile.session_file, .records, .store_rows). The conversation
each worker runs is the one its resume record names (workers/resume.py), or its profile finds
(RunnerProfile.find), so the file is found from that.
How a shape of records is read is loop/clirecords.py; this module is the beat's pass over the
workers and what their budgets do.

Reads are incremental: `<data>/.worker-meter.json` (two slots: spend/spent.py) keeps, per
worker, its file's identity (st_dev, st_ino), the offset read to, and what it has counted so
far; a beat only stats a file whose size and mtime have not moved. Each read is bounded (bytes
per beat, bytes per line: a longer line is skipped to its end), opens without following a
symlink and without blocking, and refuses anything but a regular file. What a beat newly counts
goes to the cost ledger as one `worker` row (id, runner, model); a file replaced or shortened
is counted again from its start, and only what exceeds the amount already recorded is added, so
nothing counts twice.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from looop.act.moves.far import backend_for
from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.config import Config, Knobs
from looop.home.errors import LooopError
from looop.home.stamps import utc_stamp
from looop.home.where import COST_LEDGER
from looop.human.notify import notify
from looop.loop.clirecords import (
    FOLDS,
    Price,
    fold_store,
    new_lines,
    own_reports,
    pricer,
)
from looop.runners import COST_REPORTING, profile, program
from looop.spend import totals
from looop.spend.prices import price_table
from looop.spend.record import append_costs, metered_mark
from looop.spend.spent import (
    Spend,
    budgets,
    held_for_day,
    let_go_on,
    mark_over,
    over_budget,
    read_state,
    write_state,
)
from looop.spend.statusspend import add_today, daily_budget, today_sources
from looop.workers import resume

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # resume._ID: a worker id
KIND = "worker"  # the ledger rows' kind: spend the meter read, not an agent's report
_RETRY_S = 10.0  # a conversation id a CLI names itself, not found yet: looked for this often


# -- the beat's pass -----------------------------------------------------------------------------


def _locate(
    data: str, wid: str, env: Mapping[str, str], runners: Mapping[str, str]
) -> dict[str, Any] | None:
    """A worker's CLI and the file (or dir) holding its conversation, from its resume record;
    None while that is not known yet (an id a CLI names itself: found after its first turn)."""

    try:
        raw = store.read_regular(_rec(data, wid), 65536)
        rec = jsonio.loads(raw.decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(rec, dict):
        return None
    runner = str(rec["runner"]) if isinstance(rec.get("runner"), str) else "?"
    line = rec.get("resume") if isinstance(rec.get("resume"), str) else runners.get(runner, "")
    cli = rec["cli"] if isinstance(rec.get("cli"), str) else program(line or "")
    conv = rec.get("conversation")
    started = rec.get("started")
    out: dict[str, Any] = {
        "runner": runner,
        "cli": cli,
        "started": float(started) if isinstance(started, int | float) else 0.0,
    }
    if cli not in COST_REPORTING:  # each keeps a session record looop reads
        return {**out, "unmetered": True}
    p = profile(cli)
    if p is None:
        return None
    home, cwd = rec.get("home"), rec.get("cwd")  # where a CLI naming its conversation keeps it
    if not isinstance(conv, str) or not resume.valid_id(conv):
        conv = p.find(env, home, cwd, wid, out["started"]) if isinstance(cwd, str) else None
        if conv is None:
            return None
    env = p.at_home(env, home)
    path = p.session_file(env, conv) if p.session_file is not None else None
    if path is None:
        return None
    return {**out, "conv": conv, "path": path}


def _workers(data: str) -> list[str]:
    """The workers with a resume record."""
    try:
        with os.scandir(os.path.join(data, resume.RESUME_DIR)) as it:
            names = [e.name[:-5] for e in it if e.name.endswith(".json")]
    except OSError:
        return []
    return sorted(n for n in names if _ID.fullmatch(n))


def meter(
    data: str,
    now: float,
    env: Mapping[str, str],
    prices: Mapping[str, Any],
    runners: Mapping[str, str] | None = None,
    tally: Callable[[dict[str, Any], list[int]], bool] | None = None,
) -> dict[str, Spend]:
    """One beat's pass over every worker with a resume record: what its CLI's record newly
    holds goes to the ledger (one row per worker that spent). Each worker's spend so far.
    `runners`: runner name → worker line, for a worker whose record has no resume template.
    `tally`: after the rows, keeps its part of the state (saved with it); whether it moved."""
    state = read_state(data)
    ledger = os.path.join(data, COST_LEDGER)
    price = pricer(prices)
    seen: dict[str, Any] = state["workers"]
    changed = False
    out: dict[str, Spend] = {}
    rows: list[tuple[str, str, float, str | None]] = []
    for wid in _workers(data):
        try:
            mark = os.stat(_rec(data, wid)).st_mtime_ns
        except OSError:
            continue
        w = seen.get(wid)
        if not isinstance(w, dict) or "cli" not in w or w.get("rec") != mark:
            # new, or its record was written again (a new start, an id found)
            w, moved = _find_record(data, ledger, wid, mark, now, env, runners or {}, seen)
            changed = changed or moved
            if w is None:
                continue
        out[wid], moved = _read_spend(wid, w, price, rows)
        changed = changed or moved
    changed = own_reports(data, state, seen, out) or changed
    for gone in [k for k in seen if k not in out and not os.path.exists(_rec(data, k))]:
        del seen[gone]  # its record is gone (forgotten): so is its meter
        store.remove(metered_mark(data, gone))
        changed = True
    # the ledger first: a crash between the two counts a worker's spend again next beat
    # from its ledger rows (_on_ledger), never loses it
    own: list[int] = []  # [size before, bytes written, their micro-USD]
    if tally is not None and rows:
        try:
            own.append(os.stat(ledger).st_size)
        except OSError:
            pass
    append_costs(ledger, now, KIND, rows, own if own else None)
    if tally is not None and tally(state, own):
        changed = True
    if changed:
        try:
            write_state(data, state)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return out


def _find_record(
    data: str,
    ledger: str,
    wid: str,
    mark: int,
    now: float,
    env: Mapping[str, str],
    runners: Mapping[str, str],
    seen: dict[str, Any],
) -> tuple[dict[str, Any] | None, bool]:
    """A worker met for the first time, or whose resume record was written again: where its
    CLI keeps the conversation, kept in `seen` (None while the CLI names none yet: looked for
    again in a while); whether the state moved."""
    w = seen.get(wid)
    tried = w.get("tried") if isinstance(w, dict) and "cli" not in w else None
    at = w.get("at") if isinstance(w, dict) else None
    if tried == mark and isinstance(at, float) and 0 <= now - at < _RETRY_S:
        return None, False
    got = _locate(data, wid, env, runners)
    if got is None:
        seen[wid] = {"tried": mark, "at": float(now)}
        return None, True
    same = isinstance(w, dict) and all(w.get(k) == got.get(k) for k in ("conv", "path"))
    if isinstance(w, dict) and same and w.get("started") == got.get("started"):
        w.update(got, rec=mark)
    else:
        # what the ledger already holds for this start (a lost state file) stays
        base = _on_ledger(ledger, wid, float(got.get("started") or 0.0))
        w = seen[wid] = {**got, "file": {}, "recorded": base, "rec": mark}
    if not got.get("unmetered"):
        store.atomic_write(metered_mark(data, wid), "", durable=False)
    return w, True


def _read_spend(
    wid: str, w: dict[str, Any], price: Price, rows: list[tuple[str, str, float, str | None]]
) -> tuple[Spend, bool]:
    """What the worker's CLI record newly holds, folded into `w`; a ledger row appended to
    `rows` for what is not on the ledger yet. Its spend so far; whether the state moved."""
    cli = str(w.get("cli"))
    if w.get("unmetered"):
        return Spend(wid, None, cli, None), False
    f: dict[str, Any] = w["file"] if isinstance(w.get("file"), dict) else {}
    w["file"] = f
    path = str(w.get("path"))
    p = profile(cli)
    if p is not None and p.store_rows is not None:
        moved = fold_store(p, path, str(w.get("conv")), f, price)
    else:
        moved = _follow(path, f, cli, price)
    total = int(f.get("micros", 0))
    recorded = int(w.get("recorded", 0))
    if total > recorded:
        model = f.get("model") if isinstance(f.get("model"), str) else None
        rows.append((wid, str(w.get("runner")), (total - recorded) / 1_000_000, model))
        w["recorded"] = recorded = total
        moved = True
    m = f.get("model")
    return Spend(wid, recorded / 1_000_000, cli, m if isinstance(m, str) else None), moved


def _on_ledger(ledger: str, wid: str, since: float) -> int:
    """Micro-USD the ledger holds of this worker's metered rows since its start."""

    try:
        text = store.read_since(ledger, utc_stamp(since - 1)) or ""
    except OSError:
        return 0
    total = 0
    needle = f'"id":"{wid}"'
    for line in text.splitlines():
        if needle not in line or f'"kind":"{KIND}"' not in line:
            continue
        row = totals.parse_row(line)
        if row is not None:
            total += totals.micros(row[1])
    return total


def _rec(data: str, wid: str) -> str:
    return os.path.join(data, resume.RESUME_DIR, f"{wid}.json")


def _follow(path: str, f: dict[str, Any], cli: str, price: Price) -> bool:
    """Fold a JSONL file's new lines into `f`; whether anything was read."""
    try:
        ls = os.lstat(path)
    except OSError:
        return False
    if ls.st_size == f.get("size") and ls.st_mtime_ns == f.get("mtime") and "ino" in f:
        return False  # nothing new: a stat is all a quiet worker costs
    fold = FOLDS[cli]
    for line in new_lines(path, f):
        fold(line, f, price)
    f.pop("fresh", None)
    return True  # its size or mtime moved: the state is written again


def meter_beat(ctx: Ctx, cfg: Config | None, knobs: Knobs | None = None) -> dict[str, Spend]:
    """The pulse's beat: meter every worker, then hold each to its budget and the fleet to
    the daily budget (`knobs`: the beat's; without them the daily budget is not checked)."""

    raw = cfg.raw if cfg is not None else {}
    runners = {n: r.worker for n, r in (cfg.runners if cfg else {}).items() if r.worker}
    data = os.fspath(ctx.paths.data)
    cap = daily_budget(knobs) if knobs is not None else None
    day: list[float] = []
    prices = price_table(raw.get("prices"))
    tally = (lambda state, own: _tally_day(ctx, state, own, day)) if cap is not None else None
    got = meter(data, ctx.clock.now(), ctx.child_env(), prices, runners, tally)
    limits = budgets(data)
    if limits:
        enforce(ctx, cfg, got, limits)
    if knobs is not None:
        hold_to_day(ctx, cfg, cap, day[0] if day else 0.0, got)
    return got


def _tally_day(ctx: Ctx, state: dict[str, Any], own: list[int], out: list[float]) -> bool:
    """Today's spend (decides and workers) kept in the meter's state by source, as of a ledger
    offset, so a beat folds only the rows appended since (a fleet's 30 rows, not the whole
    tail the running totals leave to their readers); a new day, another ledger or a long
    tail: read as every budget check reads it. `own`: the ledger's size before this pass
    appended its rows, their bytes and micro-USD — when nothing else came between, they are
    added as they are, not read back. Today's USD toward the budget (totals.counted) appended
    to `out`; whether the state moved."""

    data = os.fspath(ctx.paths.data)
    today = ctx.clock.local().date().isoformat()
    try:
        st = os.stat(os.path.join(data, totals.LEDGER))
        ident, size = [st.st_dev, st.st_ino], st.st_size
    except OSError:
        ident, size = [0, 0], 0
    got = state.get("day")
    d: dict[str, Any] = got if isinstance(got, dict) else {}
    off, src = d.get("off"), d.get("src")
    moved = True
    if (
        d.get("date") == today
        and d.get("ledger") == ident
        and isinstance(off, int)
        and isinstance(src, dict)
        and all(type(v) is int for v in src.values())
        and 0 <= size - off <= totals.MAX_TAIL
    ):
        if size == off:
            moved = False
        elif len(own) == 3 and own[0] == off and off + own[1] == size:  # only our rows since
            src[KIND] = src.get(KIND, 0) + own[2]
        else:
            try:
                with open(os.path.join(data, totals.LEDGER), "rb") as fh:
                    fh.seek(off)
                    buf = fh.read(size - off)
            except OSError:
                buf = b""
            buf = buf[: buf.rfind(b"\n") + 1]  # a line being written waits for the next beat
            size = off + len(buf)
            add_today(buf.decode("utf-8", "replace"), ctx.clock, src)
    else:  # the sources as every budget check reads them
        src = today_sources(data, ctx.clock)
    state["day"] = {"date": today, "ledger": ident, "off": size, "src": src}
    out.append(totals.counted(src)[0] / 1_000_000)
    return moved


def _hold(ctx: Ctx, wid: str, policy: str) -> bool:
    """Pause (sessions/hold: everything it runs, frozen) or stop (killed,
    its worktree kept) a live worker; whether it was live and so held."""

    way = backend_for(ctx, wid)  # on a host: its backend holds it there (a pod refuses a pause)
    try:
        if way.reach(wid) != "alive":  # over, or its host does not answer: nothing held
            return False
        return bool(way.kill(wid)) if policy == "stop" else way.pause(wid)
    except LooopError:  # gone meanwhile, or its host stopped answering
        return False


def enforce(
    ctx: Ctx, cfg: Config | None, got: dict[str, Spend], limits: dict[str, tuple[float, str]]
) -> list[str]:
    """Each worker whose metered spend reached its budget, once: its process group stopped
    (pause: frozen whole, `looop worker continue` resumes it) or the worker killed with its
    worktree kept (stop); an event, a journal line and a notification. The ones acted on."""
    data = os.fspath(ctx.paths.data)
    over = over_budget(data)
    done = []
    for wid, (limit, policy) in sorted(limits.items()):
        s = got.get(wid)
        if s is None or s.usd is None or s.usd < limit or wid in over:
            continue
        if not _hold(ctx, wid, policy):
            continue
        mark_over(data, wid, s.usd, limit, policy)
        done.append(wid)
        what = "paused (`looop worker continue " + wid + "` resumes it)"
        if policy == "stop":
            what = "stopped (its worktree kept)"
        msg = f"worker {wid} reached its budget ${limit:.2f} (spent ${s.usd:.2f}): {what}"
        ctx.events.emit("warn", "worker.over_budget", msg, id=wid)
        ctx.events.record("worker_over_budget", id=wid, usd=s.usd, budget=limit, policy=policy)

        notify(ctx, msg, wid, "over-budget", cfg)
    return done


def hold_to_day(
    ctx: Ctx, cfg: Config | None, cap: float | None, spent: float, got: dict[str, Spend]
) -> list[str]:
    """The daily budget `cap` (max_daily_usd: decides and workers) reached by today's
    `spent`: every running worker is held by its own policy (pause unless its budget says
    stop), said once in one line and one notification. A worker so held goes on by itself
    (thawed) once the local day is over or the fleet is under the budget again (raised);
    `looop worker continue` lets one go on for the rest of the day. The workers newly held."""
    data = os.fspath(ctx.paths.data)
    held = {w: d for w in over_budget(data) if (d := held_for_day(data, w)) is not None}
    today = ctx.clock.local().date().isoformat() if held or cap is not None else ""
    at_cap = cap is not None and spent >= cap
    for wid, day in sorted(held.items()):
        if day == today and at_cap:
            continue
        _go_on(ctx, wid, "a new day" if day != today else "under the daily budget again")
    if not at_cap or cap is None:
        return []
    over = over_budget(data)
    limits = budgets(data)
    done = []
    for wid in sorted(got):
        if wid in over or let_go_on(data, wid) == today:
            continue
        policy = limits.get(wid, (0.0, "pause"))[1]
        if not _hold(ctx, wid, policy):
            continue
        usd = got[wid].usd
        mark_over(data, wid, usd or 0.0, cap, policy, day=today)
        done.append(wid)
    if done:
        paused = [w for w in done if limits.get(w, (0.0, "pause"))[1] == "pause"]
        stopped = [w for w in done if w not in paused]
        parts = [f"paused {', '.join(paused)}"] if paused else []
        parts += [f"stopped {', '.join(stopped)} (worktrees kept)"] if stopped else []
        msg = (
            f"today's spend ${spent:.2f} reached the daily budget ${cap:.2f}: "
            + "; ".join(parts)
            + " — they go on at local midnight, or `looop worker continue ID`"
        )
        ctx.events.emit("warn", "fleet.over_budget", msg)
        ctx.events.record("fleet_over_budget", ids=done, usd=spent, budget=cap)

        notify(ctx, msg, "", "over-budget", cfg)
    return done


def _go_on(ctx: Ctx, wid: str, why: str) -> None:
    """Let a worker the daily budget held go on (sessions/hold), its mark gone."""

    data = os.fspath(ctx.paths.data)
    store.remove(os.path.join(data, "budgets", f"{wid}.over"))
    try:  # wherever it runs: a worker on a host goes on there
        if not backend_for(ctx, wid).go_on(wid):
            return
    except LooopError:
        return
    ctx.events.emit("info", "worker.goes_on", f"worker {wid} goes on: {why}", id=wid)
    ctx.events.record("worker_goes_on", id=wid, why=why)
