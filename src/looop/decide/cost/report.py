"""The `looop cost` report: spend over a span of local days, grouped one way."""

from __future__ import annotations

import math
from datetime import date, timedelta

from looop.core.clock import Clock
from looop.core.errors import LooopError
from looop.core.paths import Paths
from looop.decide.cost.ledger import ledger_row, ledger_text, local_day
from looop.decide.cost.money import usd

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

SPANS = ("today", "week", "all")
GROUPINGS = ("kind", "runner", "worker", "day")


def _key(row: dict[str, Any], by: str, day: date) -> str:
    if by == "day":
        return day.isoformat()
    if by == "worker":
        if row.get("kind") == "tick":
            return "(ticks)"
        v = row.get("id")
    else:
        v = row.get(by)
    return v if isinstance(v, str) and v else "?"


def cost_report(
    paths: Paths, clock: Clock, span: str = "today", by: str = "kind"
) -> dict[str, Any]:
    """Spend over a span (today | week = the last 7 local days | all), grouped by kind, runner,
    worker (session id; ticks as one group) or local day."""
    if span not in SPANS:
        raise LooopError(f"unknown span {span!r}: use one of {', '.join(SPANS)}")
    if by not in GROUPINGS:
        raise LooopError(f"unknown grouping --by {by!r}: use one of {', '.join(GROUPINGS)}")
    today = clock.local().date()
    start: date | None = {"today": today, "week": today - timedelta(days=6), "all": None}[span]
    text = ledger_text(paths)
    groups: dict[str, list[float]] = {}
    amounts: list[float] = []
    bad = 0
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        row = ledger_row(line)
        if row is None:
            bad += 1
            continue
        day = local_day(clock, row["_t"])
        if start is not None and not start <= day <= today:
            continue
        amounts.append(row["cost_usd"])
        groups.setdefault(_key(row, by, day), []).append(row["cost_usd"])
    return {
        "span": span,
        "by": by,
        "from": start.isoformat() if start is not None else None,
        "to": today.isoformat(),
        "total": round(math.fsum(amounts), 6),
        "calls": len(amounts),
        "groups": [
            {"key": k, "usd": round(math.fsum(v), 6), "calls": len(v)}
            for k, v in sorted(groups.items())
        ],
        "corrupt_lines": bad,
        "ledger": str(paths.cost_ledger),
        "exists": text is not None,
    }


def render_report(rep: dict[str, Any]) -> str:
    """The human text of `looop cost`."""
    if not rep.get("exists", True):
        return f"looop cost — no cost recorded yet\n  ledger: {rep.get('ledger', 'cost.jsonl')}"
    span = rep.get("span")
    if span == "today":
        head = f"looop cost — today ({rep.get('to')} local)"
    elif span == "week":
        head = f"looop cost — last 7 days ({rep.get('from')} to {rep.get('to')} local)"
    else:
        head = "looop cost — all time"
    calls = rep.get("calls", 0)
    lines = [
        head,
        f"  total: {usd(rep.get('total', 0.0))}  ({calls} call{'' if calls == 1 else 's'})",
    ]
    groups = rep.get("groups") or []
    if groups:
        lines.append(f"  by {rep.get('by', 'kind')}:")
        width = max(len(str(g["key"])) for g in groups)
        for g in groups:
            lines.append(f"    {g['key']!s:<{width}}  {usd(g['usd']):>10}  ({g['calls']})")
    bad = rep.get("corrupt_lines", 0)
    if bad:
        lines.append(
            f"  ! {bad} corrupt ledger line{'' if bad == 1 else 's'} skipped in {rep.get('ledger')}"
        )
    return "\n".join(lines)
