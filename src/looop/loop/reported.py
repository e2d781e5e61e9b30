"""What a worker no preset CLI's records meter says it spent: its own `cost report` rows.

A custom `--command` worker (and one on an SSH host, whose reports come home through the
contract) keeps no record looop reads; its budget counts what it reports — every ledger row
naming it since its start, written by `looop cost report` here or through the door. The
ledger is read (store.read_since + totals.parse_row, its own readers) once a beat for all such
workers, and only when it moved since the last count (its identity, size and mtime kept in the
meter's state), so a quiet fleet pays a stat."""

from __future__ import annotations

import os
from typing import Any

from looop.home import jsonio, store, where
from looop.home.stamps import utc_stamp
from looop.spend.spent import Spend, budgets
from looop.spend.totals import LEDGER, micros, parse_row


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
                got[wid] += micros(row[1])
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
    spends what it reports (loop/reported.py); whether the state moved."""
    wants = {w: float(seen[w].get("started") or 0.0) for w, s in out.items() if s.usd is None}
    wants.update({w: t for w, t in away_budgeted(data, budgets(data)).items() if w not in out})
    got, moved = reported(data, state, wants)
    for wid, n in got.items():
        cli = out[wid].cli if wid in out else "?"
        out[wid] = Spend(wid, n / 1_000_000 if n else None, cli, None)
    return moved
