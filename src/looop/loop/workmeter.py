"""What each worker spends, read from its agent CLI's own records each beat.

The four preset CLIs keep a record of every model call in their own files: claude's project
session JSONL (token usage per assistant message, priced with the price table), codex's
rollout JSONL (`token_count` events: the conversation's running token totals, priced), pi's
session JSONL (each assistant message carries its cost) and opencode's SQLite store (each
assistant message's row carries its cost). The conversation each worker runs is the one its
resume record names (workers/resume.py), so the file is found from that.

Reads are incremental: `<data>/.worker-meter.json` (two slots: workers/spent.py) keeps, per
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
import signal
import sqlite3
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from looop.core import ljson, store
from looop.core.config import Config, Knobs
from looop.core.context import Ctx
from looop.core.stamps import utc_stamp
from looop.decide.cost import totals
from looop.decide.cost.breakers import daily_budget
from looop.decide.cost.clis import COST_REPORTING
from looop.decide.cost.ledger import spent_on_day
from looop.decide.cost.money import sane_usd
from looop.decide.cost.prices import lookup_price, price_table, price_tokens
from looop.decide.cost.record import append_costs, metered_mark
from looop.human.notify import notify
from looop.sessions import SessionError, get_session, kill
from looop.workers import resume, startrecord
from looop.workers.spent import (
    Spend,
    budgets,
    held_for_day,
    let_go_on,
    mark_over,
    over_budget,
    read_state,
    write_state,
)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # resume._ID: a worker id
METERED = COST_REPORTING  # each keeps a session record looop reads
KIND = "worker"  # the ledger rows' kind: spend the meter read, not an agent's report
_MAX_READ = 4 << 20  # bytes read from one file in one beat; the rest waits for the next
_MAX_LINE = 1 << 20  # a longer line is no usage record: skipped to its end
_MAX_DIRS = 2000  # claude project dirs looked through for a conversation's file
_MAX_MESSAGES = 5000  # opencode message rows read per beat
_RETRY_S = 10.0  # a conversation id not found yet (codex, opencode) is looked for this often


# -- reading a file's new lines ---------------------------------------------------------------


def _open(path: str) -> int | None:
    """A no-follow, non-blocking fd on a regular file; None for anything else or missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def new_lines(path: str, st: dict[str, Any]) -> Iterator[bytes]:
    """The whole lines appended to `path` since `st`'s offset (at most _MAX_READ bytes), each
    at most _MAX_LINE long; `st` is moved on ("dev", "ino", "off", "skip"). A file whose
    identity changed or that shrank is read from the start again (the caller's counts too)."""
    fd = _open(path)
    if fd is None:
        return
    try:
        fs = os.fstat(fd)
        if (fs.st_dev, fs.st_ino) != (st.get("dev"), st.get("ino")) or fs.st_size < st.get(
            "off", 0
        ):
            st.clear()
            st.update(dev=fs.st_dev, ino=fs.st_ino, off=0, skip=False, fresh=True)
        st["size"], st["mtime"] = fs.st_size, fs.st_mtime_ns
        off = int(st["off"])
        if fs.st_size <= off:
            return
        buf = os.pread(fd, min(fs.st_size - off, _MAX_READ), off)
    finally:
        os.close(fd)
    pos = 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            rest = len(buf) - pos
            if rest > _MAX_LINE:  # a line too long to hold: drop it, skip to its end
                st["skip"] = True
                pos = len(buf)
            break
        if st.get("skip"):
            st["skip"] = False
        elif nl - pos <= _MAX_LINE:
            yield buf[pos:nl]
        pos = nl + 1
    st["off"] = off + pos


def _obj(line: bytes) -> dict[str, Any] | None:
    try:
        v = ljson.loads(line.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return v if isinstance(v, dict) else None


def _n(d: Mapping[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12 else 0


def _micros(usd: float) -> int:
    return round(usd * 1_000_000)


Price = Callable[[str | None], Mapping[str, float]]


def _pricer(prices: Mapping[str, Any]) -> Price:
    """The price row of a model, looked up once per pass: the lookup scans the table for a
    dated snapshot's name, half of what folding a claude line cost."""
    memo: dict[str | None, Mapping[str, float]] = {}

    def price(model: str | None) -> Mapping[str, float]:
        row = memo.get(model)
        if row is None:
            row = memo[model] = lookup_price(prices, model)[1]
        return row

    return price


# -- each CLI's lines -----------------------------------------------------------------------


def _claude(line: bytes, st: dict[str, Any], price: Price) -> None:
    """An assistant line's usage. claude writes one line per content block of a message, each
    with the message's usage so far: the last line of a message id stands for it."""
    if b'"usage"' not in line or b'"assistant"' not in line:
        return
    obj = _obj(line)
    msg = obj.get("message") if obj is not None and obj.get("type") == "assistant" else None
    usage = msg.get("usage") if isinstance(msg, dict) else None
    if not isinstance(msg, dict) or not isinstance(usage, dict):
        return
    model = msg.get("model")
    if isinstance(model, str) and model and not model.startswith("<"):
        st["model"] = model[:200]
    row = price(st.get("model"))
    usd = price_tokens(
        row,
        _n(usage, "input_tokens"),
        _n(usage, "cache_read_input_tokens"),
        _n(usage, "cache_creation_input_tokens"),
        _n(usage, "output_tokens"),
    )
    mid = msg.get("id")
    mid = mid[:200] if isinstance(mid, str) else None
    if mid is not None and mid == st.get("last_id"):
        st["micros"] = st.get("micros", 0) - st.get("last_micros", 0)
    st["last_id"], st["last_micros"] = mid, _micros(usd)
    st["micros"] = st.get("micros", 0) + _micros(usd)


def _codex(line: bytes, st: dict[str, Any], price: Price) -> None:
    """`token_count` events carry the conversation's running totals: the last one stands. A
    total below the one before is a new run (a resume that counts again from zero): what the
    earlier run reached is kept in `base`."""
    if b'"turn_context"' in line and b'"model"' in line:
        obj = _obj(line)
        pay = obj.get("payload") if obj is not None else None
        model = pay.get("model") if isinstance(pay, dict) else None
        if isinstance(model, str) and model:
            st["model"] = model[:200]
        return
    if b'"token_count"' not in line:
        return
    obj = _obj(line)
    pay = obj.get("payload") if obj is not None else None
    info = pay.get("info") if isinstance(pay, dict) else None
    total = info.get("total_token_usage") if isinstance(info, dict) else None
    if not isinstance(total, dict):
        return
    inp, out = _n(total, "input_tokens"), _n(total, "output_tokens")
    cached = min(_n(total, "cached_input_tokens"), inp)  # part of the input
    row = price(st.get("model"))
    run = _micros(price_tokens(row, inp - cached, cached, 0, out))
    tokens = inp + out
    if tokens < st.get("run_tokens", 0):
        st["base"] = st.get("base", 0) + st.get("run", 0)
    st["run"], st["run_tokens"] = run, tokens
    st["micros"] = st.get("base", 0) + run


def _pi(line: bytes, st: dict[str, Any], price: Price) -> None:
    """Each assistant message entry carries its cost (usage.cost.total), written once."""
    if b'"cost"' not in line or b'"assistant"' not in line:
        return
    obj = _obj(line)
    msg = obj.get("message") if obj is not None and obj.get("type") == "message" else None
    if not isinstance(msg, dict) or msg.get("role") != "assistant":
        return
    usage = msg.get("usage")
    cost = usage.get("cost") if isinstance(usage, dict) else None
    usd = sane_usd(cost.get("total")) if isinstance(cost, dict) else None
    model = msg.get("model")
    if isinstance(model, str) and model:
        st["model"] = model[:200]
    if usd is not None:
        st["micros"] = st.get("micros", 0) + _micros(usd)


_LINES = {"claude": _claude, "codex": _codex, "pi": _pi}


# -- where each CLI keeps a conversation ---------------------------------------------------------


def claude_file(env: Mapping[str, str], conv: str) -> str | None:
    """`<config>/projects/<dir>/<conv>.jsonl` (the dir spells the worker's cwd; looked up by
    name rather than re-spelled, bounded)."""
    base = env.get("CLAUDE_CONFIG_DIR") or os.path.join(env.get("HOME", "/nonexistent"), ".claude")
    projects = os.path.join(base, "projects")
    try:
        with os.scandir(projects) as it:
            for i, d in enumerate(it):
                if i >= _MAX_DIRS:
                    break
                p = os.path.join(projects, d.name, f"{conv}.jsonl")
                if d.is_dir(follow_symlinks=False) and os.path.lexists(p):
                    return p
    except OSError:
        return None
    return None


def codex_file(home: str, conv: str) -> str | None:
    """The rollout `home/sessions/YYYY/MM/DD/rollout-…-<conv>.jsonl` (date dirs only)."""
    base = os.path.join(home, "sessions")
    try:
        for root, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if d.isdigit()]
            for n in names:
                if n.startswith("rollout-") and n.endswith(f"-{conv}.jsonl"):
                    return os.path.join(root, n)
    except OSError:
        return None
    return None


def pi_file(env: Mapping[str, str], conv: str) -> str:
    """The preset gives pi its session file: `$HOME/.pi/agent/sessions/looop/<conv>.jsonl`."""
    home = env.get("HOME", "/nonexistent")
    return os.path.join(home, ".pi", "agent", "sessions", "looop", f"{conv}.jsonl")


def opencode_db(env: Mapping[str, str]) -> str:
    """opencode's store (1.x): `<XDG data>/opencode/opencode.db`, SQLite in WAL mode."""
    base = env.get("XDG_DATA_HOME") or os.path.join(
        env.get("HOME", "/nonexistent"), ".local", "share"
    )
    return os.path.join(base, "opencode", "opencode.db")


def _sqlite(db: str) -> Any:
    """A read-only connection to a regular file (not a symlink); None otherwise."""
    try:
        if not stat.S_ISREG(os.lstat(db).st_mode):
            return None
    except OSError:
        return None

    try:
        con = sqlite3.connect(f"file:{quote(db)}?mode=ro", uri=True, timeout=0.2)
        con.execute("PRAGMA query_only = 1")
        return con
    except sqlite3.Error:
        return None


def find_opencode(db: str, cwd: str, wid: str, since: float) -> str | None:
    """The conversation this worker started: of the sessions opencode made in `cwd` since the
    start, the earliest one a part of which is the worker's brief (its contract names it)."""

    con = _sqlite(db)
    if con is None:
        return None
    try:
        rows = con.execute(
            "SELECT id FROM session WHERE directory = ? AND time_created >= ? "
            "ORDER BY time_created LIMIT 20",
            (cwd, int((since - 2) * 1000)),
        ).fetchall()
        marker = f"%You are worker `{wid}`%"
        for (sid,) in rows:
            hit = con.execute(
                "SELECT 1 FROM part WHERE session_id = ? AND data LIKE ? LIMIT 1", (sid, marker)
            ).fetchone()
            if hit is not None and isinstance(sid, str):
                return sid
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return None


def _opencode(db: str, conv: str, st: dict[str, Any], price: Price) -> bool:
    """Each assistant message's row carries its `cost` (growing while it streams): the
    conversation's spend is the sum of each message's latest. Only rows updated since the
    last read are fetched, and only when the store or its WAL moved. Whether anything did."""
    key = []
    for p in (db, db + "-wal"):
        try:
            ls = os.lstat(p)
            key += [ls.st_size, ls.st_mtime_ns]
        except OSError:
            key += [0, 0]
    if st.get("key") == key:
        return False

    con = _sqlite(db)
    if con is None:
        return False
    seen: dict[str, Any] = st.setdefault("msgs", {})
    try:
        rows = con.execute(
            "SELECT id, time_updated, data FROM message WHERE session_id = ? "
            "AND time_updated >= ? ORDER BY time_updated LIMIT ?",
            (conv, int(st.get("upd", 0)), _MAX_MESSAGES),
        ).fetchall()
    except sqlite3.Error:
        return False
    finally:
        con.close()
    st["key"] = key
    for mid, upd, data in rows:
        if not isinstance(mid, str) or not isinstance(data, str) or len(data) > _MAX_LINE:
            continue
        obj = _obj(data.encode())
        if obj is None or obj.get("role") != "assistant":
            continue
        usd = sane_usd(obj.get("cost"))
        model = obj.get("modelID")
        if isinstance(model, str) and model:
            st["model"] = model[:200]
        tok = obj.get("tokens")
        if not usd and isinstance(tok, dict):  # no cost said: its tokens priced
            got = tok.get("cache")
            cache: dict[str, Any] = got if isinstance(got, dict) else {}
            row = price(st.get("model"))
            usd = price_tokens(
                row, _n(tok, "input"), _n(cache, "read"), _n(cache, "write"), _n(tok, "output")
            )
        seen[mid[:200]] = _micros(usd or 0.0)
        if isinstance(upd, int):
            st["upd"] = max(int(st.get("upd", 0)), upd)
    st["micros"] = sum(v for v in seen.values() if isinstance(v, int))
    return True


# -- the beat's pass -----------------------------------------------------------------------------


def _locate(
    data: str, wid: str, env: Mapping[str, str], runners: Mapping[str, str]
) -> dict[str, Any] | None:
    """A worker's CLI and the file (or dir) holding its conversation, from its resume record;
    None while that is not known yet (a codex id is found after its first turn)."""

    try:
        raw = store.read_regular(os.path.join(data, resume.RESUME_DIR, f"{wid}.json"), 65536)
        rec = ljson.loads(raw.decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(rec, dict):
        return None
    runner = str(rec["runner"]) if isinstance(rec.get("runner"), str) else "?"
    line = rec.get("resume") if isinstance(rec.get("resume"), str) else runners.get(runner, "")
    cli = startrecord.program(line or "")
    conv = rec.get("conversation")
    started = rec.get("started")
    out: dict[str, Any] = {
        "runner": runner,
        "cli": cli,
        "started": float(started) if isinstance(started, int | float) else 0.0,
    }
    if cli not in METERED:
        return {**out, "unmetered": True}
    if not isinstance(conv, str) or not resume.valid_id(conv):
        cwd = rec.get("cwd")
        if cli == "codex" and isinstance(rec.get("home"), str) and isinstance(cwd, str):
            conv = resume.find_codex(rec["home"], cwd, wid, out["started"])
        elif cli == "opencode" and isinstance(cwd, str):
            conv = find_opencode(opencode_db(env), cwd, wid, out["started"])
        if not isinstance(conv, str) or not resume.valid_id(conv):
            return None
    path: str | None
    if cli == "claude":
        path = claude_file(env, conv)
    elif cli == "codex":
        home = rec.get("home") if isinstance(rec.get("home"), str) else None
        path = codex_file(home or os.path.join(env.get("HOME", "/nonexistent"), ".codex"), conv)
    elif cli == "pi":
        path = pi_file(env, conv)
    else:
        path = opencode_db(env)
    if path is None:
        return None
    return {**out, "conv": conv, "path": path}


def _workers(data: str) -> list[str]:
    """The workers with a resume record (resume.RESUME_DIR: not imported, it is heavy)."""
    try:
        with os.scandir(os.path.join(data, "resume")) as it:
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
    ledger = os.path.join(data, "cost.jsonl")
    price = _pricer(prices)
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
            # new, or its record was written again (a new start, a codex id found)
            w, moved = _find_record(data, ledger, wid, mark, now, env, runners or {}, seen)
            changed = changed or moved
            if w is None:
                continue
        out[wid], moved = _read_spend(wid, w, price, rows)
        changed = changed or moved
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
    if cli == "opencode":
        moved = _opencode(path, str(w.get("conv")), f, price)
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
        row = _obj(line.encode())
        usd = sane_usd(row.get("cost_usd")) if row is not None else None
        if usd is not None:
            total += _micros(usd)
    return total


def _rec(data: str, wid: str) -> str:
    return os.path.join(data, "resume", f"{wid}.json")


def _follow(path: str, f: dict[str, Any], cli: str, price: Price) -> bool:
    """Fold a JSONL file's new lines into `f`; whether anything was read."""
    try:
        ls = os.lstat(path)
    except OSError:
        return False
    if ls.st_size == f.get("size") and ls.st_mtime_ns == f.get("mtime") and "ino" in f:
        return False  # nothing new: a stat is all a quiet worker costs
    fold = _LINES[cli]
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
    cap = None
    if knobs is not None:
        cap = daily_budget(knobs)
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
    """Today's spend (decides and workers) kept in the meter's state as of a ledger offset,
    so a beat folds only the rows appended since (a fleet's 30 rows, not the whole tail the
    running totals leave to their readers); a new day, another ledger or a long tail: read
    as every budget check reads it. `own`: the ledger's size before this pass appended its
    rows, their bytes and micro-USD — when nothing else came between, they are added as
    they are, not read back. Appended to `out`; whether the state moved."""

    data = os.fspath(ctx.paths.data)
    today = ctx.clock.local().date().isoformat()
    try:
        st = os.stat(os.path.join(data, totals.LEDGER))
        ident, size = [st.st_dev, st.st_ino], st.st_size
    except OSError:
        ident, size = [0, 0], 0
    got = state.get("day")
    d: dict[str, Any] = got if isinstance(got, dict) else {}
    off, micros = d.get("off"), d.get("micros")
    if (
        d.get("date") == today
        and d.get("ledger") == ident
        and isinstance(off, int)
        and isinstance(micros, int)
        and 0 <= size - off <= totals.MAX_TAIL
    ):
        if size == off:
            out.append(micros / 1_000_000)
            return False
        if len(own) == 3 and own[0] == off and off + own[1] == size:  # only our rows since
            micros += own[2]
            state["day"] = {"date": today, "ledger": ident, "off": size, "micros": micros}
            out.append(micros / 1_000_000)
            return True
        quarters: dict[str, dict[str, int]] = {}
        try:
            with open(os.path.join(data, totals.LEDGER), "rb") as fh:
                fh.seek(off)
                buf = fh.read(size - off)
        except OSError:
            buf = b""
        end = off + totals.fold(buf, quarters, 0)
        tm = ctx.clock.local_tm(ctx.clock.now())[:3]
        for k, bucket in quarters.items():
            if ctx.clock.local_tm(int(k))[:3] == tm:
                micros += sum(bucket.values())
        state["day"] = {"date": today, "ledger": ident, "off": end, "micros": micros}
    else:
        usd = spent_on_day(ctx.paths, ctx.clock)
        micros = round(usd * 1_000_000)
        state["day"] = {"date": today, "ledger": ident, "off": size, "micros": micros}
    out.append(micros / 1_000_000)
    return True


def _hold(ctx: Ctx, wid: str, policy: str) -> bool:
    """Pause (SIGSTOP of its process group: the agent and what it runs) or stop (killed,
    its worktree kept) a live worker; whether it was live and so held."""

    try:
        sess = get_session(ctx.paths.data, wid)
    except SessionError:
        return False
    if not sess.alive:
        return False
    if policy == "stop":
        try:
            kill(ctx.paths.data, wid)
        except SessionError:
            return False
    elif sess.child_pid:
        try:
            os.killpg(sess.child_pid, signal.SIGSTOP)
        except OSError:
            return False
    return True


def enforce(
    ctx: Ctx, cfg: Config | None, got: dict[str, Spend], limits: dict[str, tuple[float, str]]
) -> list[str]:
    """Each worker whose metered spend reached its budget, once: its process group stopped
    (pause: SIGSTOP, `looop worker continue` resumes it) or the worker killed with its
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
    (SIGCONT) once the local day is over or the fleet is under the budget again (raised);
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
    """Let a worker the daily budget held go on: SIGCONT to its group, its mark gone."""

    data = os.fspath(ctx.paths.data)
    store.remove(os.path.join(data, "budgets", f"{wid}.over"))
    try:
        sess = get_session(ctx.paths.data, wid)
    except SessionError:
        return
    if not sess.alive or not sess.child_pid:
        return
    try:
        os.killpg(sess.child_pid, signal.SIGCONT)
    except OSError:
        return
    ctx.events.emit("info", "worker.goes_on", f"worker {wid} goes on: {why}", id=wid)
    ctx.events.record("worker_goes_on", id=wid, why=why)
