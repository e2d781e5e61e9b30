"""One row into the cost ledger: light (no json package, datetime or pathlib), because a
worker's `looop cost report` is a hot verb."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, store
from looop.home.stamps import utc_stamp
from looop.spend import rotate, sane_usd, totals

if TYPE_CHECKING:
    from looop.home.store import AnyPath


def append_cost(
    ledger: AnyPath,
    now: float,
    kind: str,
    id: str,
    runner: str,
    usd: float,
    key: str | None = None,
) -> bool:
    """Append one ledger row; only finite amounts > 0 (after rounding to 6 places) count.
    `key`: the home's request key of a worker away from home, kept on the row (keyed_row)."""
    return _append(ledger, now, kind, [(id, runner, usd, "key", key)], totals.FLUSH_BYTES) == 1


def _rotate(ledger: AnyPath, stamp: str) -> None:
    """A new month's first row starts a new file (rotate.py)."""
    path = os.fspath(ledger)
    if os.path.basename(path) == rotate.LEDGER:
        rotate.rotate_if_due(os.path.dirname(path), stamp)


# a fleet's rows every beat: the totals are refreshed every METER_FLUSH bytes, not every 8 KB
# (a reader folds up to totals.MAX_TAIL past them in memory)
METER_FLUSH = 64 << 10


def append_costs(
    ledger: AnyPath,
    now: float,
    kind: str,
    rows: list[tuple[str, str, float, str | None]],
    wrote_out: list[int] | None = None,
) -> int:
    """Append many rows (id, runner, usd, model) in one write, as append_cost would each;
    how many counted. The worker meter records a whole fleet's beat this way. `wrote_out`
    gets the bytes written and their micro-USD (so the meter's day tally need not read its
    own rows back)."""
    got = [(rid, runner, usd, "model", model) for rid, runner, usd, model in rows]
    return _append(ledger, now, kind, got, METER_FLUSH, wrote_out)


def _append(
    ledger: AnyPath,
    now: float,
    kind: str,
    rows: list[tuple[str, str, float, str, str | None]],
    every: int,
    wrote_out: list[int] | None = None,
) -> int:
    """Rows (id, runner, usd, and a field kept when not None) in one write; how many counted."""
    lines = []
    amounts: list[float] = []
    stamp = utc_stamp(now)
    for rid, runner, usd, field, value in rows:
        amount = sane_usd(usd)
        if amount is None or round(amount, 6) <= 0:
            continue
        amounts.append(amount)
        row = {"cost_usd": round(amount, 6), "id": rid, "kind": kind, "runner": runner}
        if value is not None:
            row[field] = value
        row["ts"] = stamp
        lines.append(jsonio.canonical(row) + "\n")
    if not lines:
        return 0
    text = "".join(lines)
    _rotate(ledger, stamp)
    store.append_line(ledger, text)
    wrote = len(store.encode(text))
    if wrote_out is not None:
        wrote_out += [wrote, sum(totals.micros(round(a, 6)) for a in amounts)]
    # the running totals (spend/totals.py): today's spend stays O(1) to read
    totals.after_append(os.path.dirname(os.fspath(ledger)), wrote, now, every)
    return len(lines)


def keyed_row(ledger: AnyPath, key: str, since: float) -> bool:
    """Whether a row of request `key` is on the ledger among the rows since `since` (a key
    is [A-Za-z0-9_-]: its spelling in a row is exact)."""
    path = os.fspath(ledger)
    if os.path.basename(path) == rotate.LEDGER:  # the month's first rows may be archived
        text = rotate.recent_text(os.path.dirname(path), utc_stamp(since)) or ""
    else:
        text = store.read_since(ledger, utc_stamp(since)) or ""
    return f'"key":"{key}"' in text


METERED = ".metered"  # under the data dir: one empty file per worker the pulse meters


def metered_mark(data: str, wid: str) -> str:
    """The file saying the pulse reads worker `wid`'s spend from its CLI's own records
    (loop/workmeter.py), so the worker's own `cost report` is not counted again."""
    return os.path.join(data, METERED, wid)
