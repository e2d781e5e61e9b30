"""Where a worker's spend is read from, as the meter reads it (loop/workmeter.py): each preset
agent CLI's own session records — the lines a file gained since the last read (bounded,
no-follow, regular files only), and the usage they hold folded into micro-USD, as the CLI's
profile reads a line (RunnerProfile.record_usage) or its store's message rows (store_rows), or
by a built-in shape (RunnerProfile.records: running totals) — or, for a worker no such record
meters, its own `cost report` rows (below)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from looop.home import jsonio, store, where
from looop.home.stamps import utc_stamp
from looop.runners import RUNNERS
from looop.runners.runnerprofile import RunnerProfile
from looop.spend import sane_usd
from looop.spend.prices import lookup_price, price_tokens
from looop.spend.spent import Spend, budgets
from looop.spend.totals import LEDGER, parse_row
from looop.spend.totals import micros as to_micros

_MAX_READ = 4 << 20  # bytes read from one file in one beat; the rest waits for the next
MAX_LINE = 1 << 20  # a longer line is no usage record: skipped to its end
_MAX_MESSAGES = 5000  # a store's message rows read per beat


# -- reading a file's new lines ---------------------------------------------------------------


def new_lines(path: str, st: dict[str, Any]) -> Iterator[bytes]:
    """The whole lines appended to `path` since `st`'s offset (at most _MAX_READ bytes), each
    at most MAX_LINE long; `st` is moved on ("dev", "ino", "off", "skip"). A file whose
    identity changed or that shrank is read from the start again (the caller's counts too)."""
    try:
        f = store.open_regular(path, follow=False)
    except OSError:
        return
    with f:
        fd = f.fileno()
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
    pos = 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            rest = len(buf) - pos
            if rest > MAX_LINE:  # a line too long to hold: drop it, skip to its end
                st["skip"] = True
                pos = len(buf)
            break
        if st.get("skip"):
            st["skip"] = False
        elif nl - pos <= MAX_LINE:
            yield buf[pos:nl]
        pos = nl + 1
    st["off"] = off + pos


def line_object(line: bytes) -> dict[str, Any] | None:
    try:
        v = jsonio.loads(line.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return v if isinstance(v, dict) else None


def _n(d: Mapping[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**12 else 0


Price = Callable[[str | None], Mapping[str, float]]


def pricer(prices: Mapping[str, Any]) -> Price:
    """The price row of a model, looked up once per pass: the lookup scans the table for a
    dated snapshot's name, half of what folding a "messages" line cost."""
    return functools.cache(lambda model: lookup_price(prices, model)[1])


# -- each shape of record lines ------------------------------------------------------------


def _totals(line: bytes, st: dict[str, Any], price: Price) -> None:
    """`token_count` events carry the conversation's running totals: the last one stands. A
    total below the one before is a new run (a resume that counts again from zero): what the
    earlier run reached is kept in `base`."""
    if b'"turn_context"' in line and b'"model"' in line:
        obj = line_object(line)
        pay = obj.get("payload") if obj is not None else None
        model = pay.get("model") if isinstance(pay, dict) else None
        if isinstance(model, str) and model:
            st["model"] = model[:200]
        return
    if b'"token_count"' not in line:
        return
    obj = line_object(line)
    pay = obj.get("payload") if obj is not None else None
    info = pay.get("info") if isinstance(pay, dict) else None
    total = info.get("total_token_usage") if isinstance(info, dict) else None
    if not isinstance(total, dict):
        return
    inp, out = _n(total, "input_tokens"), _n(total, "output_tokens")
    cached = min(_n(total, "cached_input_tokens"), inp)  # part of the input
    row = price(st.get("model"))
    run = to_micros(price_tokens(row, inp - cached, cached, 0, out))
    tokens = inp + out
    if tokens < st.get("run_tokens", 0):
        st["base"] = st.get("base", 0) + st.get("run", 0)
    st["run"], st["run_tokens"] = run, tokens
    st["micros"] = st.get("base", 0) + run


Fold = Callable[[bytes, dict[str, Any], Price], None]


def profile_fold(p: RunnerProfile) -> Fold:
    """The fold of a CLI whose profile reads its own record lines (RunnerProfile.record_usage):
    each model message line carries its own tokens or cost; a line written again for the same
    message replaces the one before."""
    usage = p.record_usage
    mark = p.record_mark.encode()

    def fold(line: bytes, st: dict[str, Any], price: Price) -> None:
        if usage is None or mark not in line:
            return
        obj = line_object(line)
        got = usage(obj) if obj is not None else None
        if got is None:
            return
        mid, model, fresh, cached, written, out, said = got
        if model:
            st["model"] = model
        usd = sane_usd(said) if said is not None else None
        if usd is None:
            usd = price_tokens(price(st.get("model")), fresh, cached, written, out)
        micros = to_micros(usd)
        if mid and mid == st.get("last_id"):
            st["micros"] = st.get("micros", 0) - st.get("last_micros", 0)
        st["last_id"], st["last_micros"] = mid, micros
        st["micros"] = st.get("micros", 0) + micros

    return fold


_SHAPES: dict[str, Fold] = {"totals": _totals}


def folds(runners: tuple[RunnerProfile, ...] = RUNNERS) -> dict[str, Fold]:
    """Per CLI, how a line of its session record is folded: its profile's own reading, else
    the built-in fold of its shape."""
    return {
        p.name: profile_fold(p) if p.record_usage is not None else _SHAPES[p.records]
        for p in runners
        if p.record_usage is not None or p.records in _SHAPES
    }


FOLDS = folds()


# -- a CLI's store of messages ------------------------------------------------------------------


def fold_store(p: RunnerProfile, db: str, conv: str, st: dict[str, Any], price: Price) -> bool:
    """Each assistant message's row in the store (as the profile reads it: store_rows) carries
    its `cost` (growing while it streams): the conversation's spend is the sum of each message's
    latest. Only rows updated since the last read are fetched, and only when the store or its
    WAL moved. Whether anything did."""
    key = []
    for f in (db, db + "-wal"):
        try:
            ls = os.lstat(f)
            key += [ls.st_size, ls.st_mtime_ns]
        except OSError:
            key += [0, 0]
    if st.get("key") == key:
        return False

    rows = p.store_rows(db, conv, int(st.get("upd", 0)), _MAX_MESSAGES) if p.store_rows else None
    if rows is None:
        return False
    seen: dict[str, Any] = st.setdefault("msgs", {})
    st["key"] = key
    for mid, upd, data in rows:
        if not isinstance(mid, str) or not isinstance(data, str) or len(data) > MAX_LINE:
            continue
        obj = line_object(data.encode())
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
        seen[mid[:200]] = to_micros(usd or 0.0)
        if isinstance(upd, int):
            st["upd"] = max(int(st.get("upd", 0)), upd)
    st["micros"] = sum(v for v in seen.values() if isinstance(v, int))
    return True


# What a worker no preset CLI's records meter says it spent: its own `cost report` rows.
#
# A custom `--command` worker (and one on an SSH host, whose reports come home through the
# contract) keeps no record looop reads; its budget counts what it reports — every ledger row
# naming it since its start, written by `looop cost report` here or through the door. The
# ledger is read (store.read_since + totals.parse_row, its own readers) once a beat for all such
# workers, and only when it moved since the last count (its identity, size and mtime kept in the
# meter's state), so a quiet fleet pays a stat.


def reported(
    data: str, state: dict[str, Any], wants: dict[str, float]
) -> tuple[dict[str, int], bool]:
    """Micro-USD each worker in `wants` (id → its start) reported since its start, kept in
    `state["reported"]`; whether the state moved."""
    ledger = os.path.join(data, LEDGER)
    try:
        st = os.stat(ledger)
        mark = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    except OSError:
        mark = [0, 0, 0, 0]
    r = state.get("reported")
    was: dict[str, Any] = r if isinstance(r, dict) else {}
    kept = was.get("workers") if isinstance(was.get("workers"), dict) else {}
    assert isinstance(kept, dict)
    if not wants:
        return {}, state.pop("reported", None) is not None
    same = was.get("mark") == mark and all(
        isinstance(kept.get(w), dict) and kept[w].get("since") == s for w, s in wants.items()
    )
    if same and set(kept) == set(wants):
        return {w: int(kept[w].get("micros", 0)) for w in wants}, False
    got = dict.fromkeys(wants, 0)
    if same:
        got = {w: int(kept[w].get("micros", 0)) for w in wants}
    else:
        text = store.read_since(ledger, utc_stamp(min(wants.values()) - 1)) or ""
        for line in text.splitlines():
            row = parse_row(line) if '"id"' in line else None
            wid = row[0].get("id") if row is not None else None
            # stamps are whole seconds
            if row is not None and isinstance(wid, str) and wid in got and row[2] >= wants[wid] - 1:
                got[wid] += to_micros(row[1])
    workers = {w: {"micros": got[w], "since": s} for w, s in wants.items()}
    state["reported"] = {"mark": mark, "workers": workers}
    return got, True


def away_budgeted(data: str, limits: dict[str, tuple[float, str]]) -> dict[str, float]:
    """The workers with a budget that run on another host (the home's record of them in
    hosts/workers/), each with its start (the record's; not said yet: every row of its id)."""
    out: dict[str, float] = {}
    for wid in limits:
        path = os.path.join(data, where.HOSTS, where.HOST_WORKERS, f"{wid}.json")
        try:
            rec = jsonio.loads(store.read_regular(path, 65536).decode("utf-8", "replace"))
        except (OSError, ValueError, RecursionError):
            continue
        started = rec.get("started_at") if isinstance(rec, dict) else None
        ok = isinstance(started, int | float) and not isinstance(started, bool)
        out[wid] = float(started) if ok and started is not None else 0.0
    return out


def own_reports(
    data: str, state: dict[str, Any], seen: dict[str, Any], out: dict[str, Spend]
) -> bool:
    """A worker no CLI record meters (a custom command here, a budgeted one on a host)
    spends what it reports (`reported`); whether the state moved."""
    wants = {w: float(seen[w].get("started") or 0.0) for w, s in out.items() if s.usd is None}
    wants.update({w: t for w, t in away_budgeted(data, budgets(data)).items() if w not in out})
    got, moved = reported(data, state, wants)
    for wid, n in got.items():
        cli = out[wid].cli if wid in out else "?"
        out[wid] = Spend(wid, n / 1_000_000 if n else None, cli, None)
    return moved
