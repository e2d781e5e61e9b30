"""`looop ls` as a table or JSON: what cli/workers.py prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.home.terminal import paint
from looop.views import outcomes
from looop.views.workerrows import age

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


# HEALTH words of `ls` -> colour (workers/fleet.health, workers/needsinput; others stay plain)
_HEALTH_COLOUR = {
    "up": "green",
    "busy": "green",
    "idle": "green",
    "waiting-ask": "yellow",
    "needs-input": "yellow",
    "unreachable": "yellow",
    "stuck": "red",
    "down": "red",
    "dead": "dim",
}


def _spend_cell(r: dict[str, Any]) -> str:
    """A worker's spend since its start, read from its CLI's records; "unmetered" for a CLI
    whose records looop cannot read."""
    if r.get("metered") is False:
        return "unmetered"
    v = r.get("spend_usd")
    return f"${v:.2f}" if isinstance(v, int | float) else "—"


def fleet_table(rows: list[dict[str, Any]], colour: bool = False) -> str:
    """`looop ls`: the pulse and the workers (fleet_rows) as a table; colour: HEALTH and ASK
    in colour."""
    head, body = _fleet_cells(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = [
        "  ".join(
            _cell(i, c, w, row is head, colour)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ).rstrip()
        for row in (head, *body)
    ]
    if len(rows) == 1:
        lines.append("(no workers)")
    return "\n".join(lines)


def _fleet_cells(rows: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table's head and rows: the columns every table has, then those some rows need."""

    head: tuple[str, ...] = ("ID", "HEALTH", "STATE", "IDLE", "UP", "ASK", "VERIFY")
    body: list[tuple[str, ...]] = [
        (
            r["id"] + (f"  ⚑ {r['note']}" if r.get("note") else ""),
            r["health"],
            r["label"] if r["id"] != "pulse" else r["state"],
            age(r["idle_s"]),
            age(r["up_s"]),
            age(r.get("ask_age_s")),  # how long its oldest unanswered ask has waited
            r["verify"] or "—",
        )
        for r in rows
    ]
    for title, key, cell in _COLUMNS:
        if any(r.get(key) is not None if key == "metered" else r.get(key) for r in rows):
            head = (*head, title)
            body = [(*b, cell(r)) for b, r in zip(body, rows, strict=True)]
    return head, body


def _pulse_or(r: dict[str, Any], other: str) -> str:
    return "—" if r["id"] == "pulse" else other


# The columns some rows need, each shown once a row has it: how a worker ended (once
# recorded), whether it is sandboxed, what kills what its runs leave behind, where it runs,
# what the beat metered, its worktree's branch.
_COLUMNS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("OUTCOME", "outcome", lambda r: outcomes.short(r.get("outcome"))),
    ("SANDBOX", "sandboxed", lambda r: "srt" if r.get("sandboxed") else _pulse_or(r, "off")),
    ("CONTAIN", "contain", lambda r: r.get("contain") or "—"),
    ("HOST", "host", lambda r: r.get("host") or _pulse_or(r, "local")),
    ("SPEND", "metered", _spend_cell),
    ("BRANCH", "branch", lambda r: _branch_cell(r)),
)


def _branch_cell(r: dict[str, Any]) -> str:
    """The first repository's branch, and how many more a worker of several works on."""
    more = len(r.get("branches") or ()) - 1
    return f"{r.get('branch') or '—'}" + (f" (+{more})" if more > 0 and r.get("branch") else "")


def _cell(i: int, c: object, w: int, top: bool, colour: bool) -> str:
    """Column i's cell padded to width w; HEALTH and a waiting ASK painted when colour."""
    text = str(c)
    pad = " " * (w - len(text))
    if top or not colour:
        return text + pad
    if i == 1:  # HEALTH
        return paint(text, _HEALTH_COLOUR.get(text), True) + pad
    if i == 5 and text != "—":  # ASK: an ask waits on a human
        return paint(text, "yellow", True) + pad
    return text + pad


def fleet_json(rows: list[dict[str, Any]]) -> str:
    """`looop ls --json`: json.dumps(rows, indent=2, sort_keys=True, default=str), light."""

    return jsonio.dumps(rows, indent=2, sort_keys=True, default=str)
