"""One row into the cost ledger, and `looop cost report KIND ID RUNNER USD` (and the seed's
`looop _ cost KIND ID RUNNER USD`) that writes one: the click-free face here (`serve`), click's
in cli/cost.py. Light (no json package, datetime or pathlib): it is a worker's hot verb."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.errors import LooopError
from looop.home.plain import echo
from looop.home.reqkey import request_key
from looop.home.stamps import utc_stamp
from looop.spend import parse_usd, sane_usd, totals
from looop.spend import usd as usd_text

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    text, path = "".join(lines), os.fspath(ledger)
    if os.path.basename(path) == totals.LEDGER:  # a new month's first row starts a new file
        totals.rotate_if_due(os.path.dirname(path), stamp)
    store.append_line(ledger, text)
    wrote = len(store.encode(text))
    if wrote_out is not None:
        wrote_out += [wrote, sum(totals.micros(round(a, 6)) for a in amounts)]
    # the running totals (spend/totals.py): today's spend stays O(1) to read
    totals.after_append(os.path.dirname(path), wrote, now, every)
    return len(lines)


def keyed_row(ledger: AnyPath, key: str, since: float) -> bool:
    """Whether a row of request `key` is on the ledger among the rows since `since` (a key
    is [A-Za-z0-9_-]: its spelling in a row is exact)."""
    path = os.fspath(ledger)
    if os.path.basename(path) == totals.LEDGER:  # the month's first rows may be archived
        text = totals.recent_text(os.path.dirname(path), utc_stamp(since)) or ""
    else:
        text = store.read_since(ledger, utc_stamp(since)) or ""
    return f'"key":"{key}"' in text


METERED = ".metered"  # under the data dir: one empty file per worker the pulse meters


def metered_mark(data: str, wid: str) -> str:
    """The file saying the pulse reads worker `wid`'s spend from its CLI's own records
    (loop/workmeter.py), so the worker's own `cost report` is not counted again."""
    return os.path.join(data, METERED, wid)


USAGE = (
    "usage: looop cost report KIND ID RUNNER USD "
    "(e.g. looop cost report session triage claude 0.42)"
)


# A run again after a cut comes within the worker's retry window (two minutes): look back far
# enough past it, and no further.
KEYED_LOOKBACK_S = 86400.0


def report_cost(
    data: str,
    now: float,
    kind: str,
    rid: str,
    runner: str,
    amount: str,
    env: Mapping[str, str] | None = None,
) -> None:
    value = parse_usd(amount)
    if value is None:
        raise LooopError(f"'{amount}' is not an amount in USD (e.g. 0.42 or $0.42)")
    if "/" not in rid and rid[:1] not in ("", ".") and os.path.exists(metered_mark(data, rid)):
        # the pulse reads this worker's spend from its CLI's own records (loop/workmeter.py)
        echo(f"{kind} {rid} is metered from its CLI's own records: not counted again")
        return
    ledger = os.path.join(data, where.COST_LEDGER)
    key, again = request_key(env or {})
    if key is not None and again and keyed_row(ledger, key, now - KEYED_LOOKBACK_S):
        pass  # the cut run recorded it: said again, counted once
    elif not append_cost(ledger, now, kind, rid, runner, value, key):
        raise LooopError(f"nothing recorded: {amount} is not a positive amount")
    echo(f"recorded {usd_text(value)} for {kind} {rid} ({runner})")


def parse_fast(argv: list[str]) -> tuple[str, str, str, str] | None:
    """(kind, id, runner, usd) for the plain spellings; None (click's turn) for anything else."""
    rest = argv[1:]
    if rest[:1] == ["report"]:
        rest = rest[1:]
    if len(rest) != 4 or any(a.startswith("-") for a in rest):
        return None
    return rest[0], rest[1], rest[2], rest[3]


def run_fast(parsed: tuple[str, str, str, str], env: Mapping[str, str], now: float) -> None:
    report_cost(where.resolve(env, os.getcwd())[0], now, *parsed, env=env)


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """`cost report KIND ID RUNNER USD` in its plain spelling, run; False: click's."""
    parsed = parse_fast(argv)
    if parsed is not None:
        run_fast(parsed, env, now)
    return parsed is not None
