"""`looop cost [today|week|all] [--by kind|runner|worker|model|day] [--json]`: the work of
cli/mailbox.py, and its text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.home.plain import echo
from looop.spend import usd
from looop.spend.days import Held
from looop.spend.report import reports_at, uncosted_at
from looop.spend.savings import savings_line, savings_view

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock
    from looop.spend.views import CostReport

BYS = ("kind", "runner", "worker", "model", "day")


def print_report(data: str, clock: Clock, span: str, by: str, as_json: bool) -> None:
    """The report, its decides of unknown cost and what the gate saved, as text or JSON."""
    held = Held()  # the day totals read once for the report and its uncosted decides
    (rep,) = reports_at(data, clock, [(span, by)], held)
    unknown = uncosted_at(data, clock, rep, held)
    saved = savings_view(data, clock)
    if as_json:
        out = {**rep, "uncosted_calls": unknown, "savings": saved}
        echo(jsonio.dumps(out, indent=2, sort_keys=True))
    else:
        echo(render_report(rep, unknown, saved))


def render_report(rep: CostReport, unknown: int = 0, saved: dict[str, Any] | None = None) -> str:
    """The human text of `looop cost`; `unknown`: decides whose runner reported no cost;
    `saved`: what the gate saved (home/savings.savings_view)."""
    tail = [f"  saved: {savings_line(saved)}"] if saved is not None else []
    if not rep["exists"] and not unknown:
        return "\n".join([f"looop cost — no cost recorded yet\n  ledger: {rep['ledger']}", *tail])
    span = rep["span"]
    if span == "today":
        head = f"looop cost — today ({rep['to']} local)"
    elif span == "week":
        head = f"looop cost — last 7 days ({rep['from']} to {rep['to']} local)"
    else:
        head = "looop cost — all time"
    calls = rep["calls"]
    if not rep["exists"]:  # only decides that reported nothing: no "$0", which would be a lie
        total = f"unknown  ({unknown} call{'' if unknown == 1 else 's'}, cost unknown)"
    else:
        total = f"{usd(rep['total'])}  ({calls} call{'' if calls == 1 else 's'}"
        total += f"; {unknown} more, cost unknown)" if unknown else ")"
    lines = [head, f"  total: {total}"]
    if unknown:
        lines.append(
            "  cost unknown: the runner reported no cost for those decides (declare its cost "
            "spec: docs/RUNNERS.md)"
        )
    groups = rep["groups"]
    if groups:
        lines.append(f"  by {rep['by']}:")
        width = max(len(g["key"]) for g in groups)
        for g in groups:
            lines.append(f"    {g['key']:<{width}}  {usd(g['usd']):>10}  ({g['calls']})")
    bad = rep["corrupt_lines"]
    if bad:
        lines.append(
            f"  ! {bad} corrupt ledger line{'' if bad == 1 else 's'} skipped in {rep['ledger']}"
        )
    return "\n".join(lines + tail)
