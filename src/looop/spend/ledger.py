"""The cost ledger (`cost.jsonl`): one row per metered tick or worker report, read back per
local day, per run, or whole; and the lock every spend-state writer takes."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from looop.home import store
from looop.home.clock import Clock
from looop.home.errors import CorruptState
from looop.home.paths import Paths
from looop.spend import rotate
from looop.spend.record import append_cost
from looop.spend.statusspend import spent_today
from looop.spend.totals import parse_row

if TYPE_CHECKING:
    from typing import Any


def record_cost(paths: Paths, now: float, kind: str, id: str, runner: str, usd: float) -> bool:
    """Append one ledger row; only finite amounts > 0 (after rounding to 6 places) count."""
    return append_cost(paths.cost_ledger, now, kind, id, runner, usd)


def ledger_text(paths: Paths, since: str | None = None) -> str | None:
    """The ledger, lossily decoded, its archived months (rotate.py) first; None when there is
    none. Unreadable (not corrupt) -> CorruptState. since: a UTC stamp; only the tail back to
    rows older than it (store.read_since), an archive's too when the ledger starts later.
    Whole, it costs every row ever written: the spend views read days.day_totals instead."""
    data = os.fspath(paths.data)
    try:
        if since is not None:
            return rotate.recent_text(data, since)
        files = [*rotate.archives(data), os.fspath(paths.cost_ledger)]
        parts = [store.read_text(p) for p in files]
    except OSError as e:
        raise CorruptState(
            f"cannot read {e.filename or paths.cost_ledger}: {e.strerror}; fix its permissions"
        ) from e
    got = [t if t.endswith("\n") or not t else t + "\n" for t in parts if t is not None]
    return "".join(got) if got else None


def ledger_row(line: str) -> dict[str, Any] | None:
    """A ledger row, its parsed time in `_t`, or None when the line is corrupt."""
    row = parse_row(line)
    if row is None:
        return None
    obj, amount, when = row
    obj["cost_usd"], obj["_t"] = amount, when
    return obj


def read_ledger(paths: Paths) -> tuple[list[dict[str, Any]], int]:
    """Every readable row (in file order) and how many corrupt lines were skipped. A row is
    corrupt unless it is an object with a sane `cost_usd` and an RFC 3339 `ts`."""
    rows, bad = parsed_rows(ledger_text(paths))
    for row in rows:
        row.pop("_t")
    return rows, bad


def parsed_rows(text: str | None) -> tuple[list[dict[str, Any]], int]:
    """Every sane row of ledger text, each with its parsed time in `_t`, and how many
    non-blank lines were not sane."""
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        row = ledger_row(line)
        if row is None:
            bad += 1
        else:
            rows.append(row)
    return rows, bad


def spent_on_day(paths: Paths, clock: Clock) -> float:
    """USD toward the daily budget of today's ledger rows (ticks and worker reports stamped on
    the LOCAL calendar day; workers' own reports bounded: totals.counted): the budget resets at
    local midnight and survives restarts. statusspend.spent_today's answer, over Paths."""
    return spent_today(os.fspath(paths.data), clock)[0]


def run_cost(paths: Paths, run_id: str) -> float | None:
    """The USD the ledger holds for one run id (all its rows, e.g. retried attempts); None when
    it holds none."""
    text = ledger_text(paths)
    if not text or not run_id:
        return None
    amounts: list[float] = []
    for line in text.splitlines():
        if run_id not in line:
            continue
        row = ledger_row(line)
        if row is not None and row.get("id") == run_id:
            amounts.append(row["cost_usd"])
    return math.fsum(amounts) if amounts else None
