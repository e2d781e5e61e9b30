"""`looop cost report KIND ID RUNNER USD` (and the seed's `looop _ cost KIND ID RUNNER USD`):
the work of both faces, the click-free one here (`serve`) and cli/mailbox.py."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import where
from looop.home.errors import LooopError
from looop.home.plain import echo
from looop.home.reqkey import request_key
from looop.spend import parse_usd, usd
from looop.spend.record import append_cost, keyed_row, metered_mark

if TYPE_CHECKING:
    from collections.abc import Mapping


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
    echo(f"recorded {usd(value)} for {kind} {rid} ({runner})")


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
