"""The fleet as `looop ls` and `worker list` show it, and as its table or JSON: the pulse (who
holds the beat lock: home/locks.py) and the workers with health, ages and state. Light
(plain-string paths, no typing or datetime), as the home is. The workers on other hosts are
the remote wing's (remote/fleet.py), handed in as `far` and asked only when the home has
some."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, where
from looop.home.locks import beat_holder_at
from looop.home.sessionfiles import list_light
from looop.home.stamps import parse_utc
from looop.home.terminal import paint
from looop.spend.spent import over_budget, over_limit, spent
from looop.spend.usagewindows import held_rows
from looop.views import outcomes
from looop.views.workerrows import OVER_BUDGET, age, worker_rows

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from looop.home.clock import Clock

    # the workers away from home: (data dir, clock, stuck secs, env) -> their rows
    FarRows = Callable[[str, Clock, int, dict[str, str] | None], list[dict[str, Any]]]


def _with_spend(data: str, rows: list[dict[str, Any]]) -> None:
    """Each worker's spend as the last beat metered it from its CLI's records (loop/workmeter):
    `spend_usd` (None: not metered yet) and `metered` (False: a CLI looop cannot read)."""
    got = spent(data)
    for r in rows:
        s = got.get(str(r["id"]))
        r["spend_usd"] = s.usd if s is not None else None
        r["metered"] = None if s is None else s.usd is not None
        if s is None and r.get("host"):  # its CLI's records stay on its host: not read
            r["metered"] = False


def fleet_rows_at(
    data: str,
    clock: Clock,
    stuck_secs: int,
    all_sessions: bool,
    env: dict[str, str] | None = None,
    far: FarRows | None = None,
    sessions: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """fleet_rows from the data dir as a string and the knob it needs: `looop ls` answers
    through this. `env`:
    the environment remote hosts are reached with (a kubeconfig's place; None: this
    process's own); `far`: the workers on other hosts (remote/fleet.py; None: not asked);
    `sessions`: the home's list_light(data, not all_sessions), when the caller read it (the
    web's kept read, which /state shares)."""

    # no screen read here: `ls` shows the needs-input verdict of the last beat's look
    # without --all the finished sessions are never shown: not read past their status.json
    light = list_light(data, not all_sessions) if sessions is None else sessions
    rows = worker_rows(data, light, clock, stuck_secs)
    if far is not None and os.path.isdir(where.host_workers(data)):
        away = far(data, clock, stuck_secs, env)
        over = over_budget(data) if away else set()
        for r in away:  # paused on its host by the home's meter at its spend budget
            if r.get("alive") and r["id"] in over and over_limit(data, r["id"]) is None:
                r["health"] = OVER_BUDGET
        rows = sorted(rows + away, key=lambda r: str(r["id"]))
    if not all_sessions:
        rows = [r for r in rows if r["alive"]]
    # ages from a now read after every reading, a far host's answer included: a row judged
    # stuck by its quiet never shows an IDLE below that quiet
    now = clock.now()
    for r in rows:
        if not r["alive"] and r["state"] in ("starting", "running"):
            r["state"] = "dead"  # its supervisor died: the file says running, the lock says not
        started = parse_utc(r["started_at"]) if isinstance(r.get("started_at"), str) else None
        r["up_s"] = now - started if started else None
        r["uptime_s"] = r["up_s"]  # v1.0's name (sys-sessions), the same value
        r["idle_s"] = now - r["last_output_unix"] if r.get("last_output_unix") else None
        since = r.get("ask_since_unix")
        r["ask_age_s"] = max(0.0, now - since) if since is not None else None
        r.setdefault("outcome", None)  # a far row carries its own (remote/engine.py)
    _with_spend(data, rows)
    held = held_rows(data, clock)  # starts held for a usage window: `scheduled`
    if held:
        ids = {str(r["id"]) for r in held}
        rows = sorted([r for r in rows if r["id"] not in ids] + held, key=lambda r: str(r["id"]))
    return [_pulse_row(data), *rows]


def _pulse_row(data: str) -> dict[str, Any]:
    """The pulse as a row of the fleet: who holds the beat lock (home/locks.py)."""
    holder = beat_holder_at(data)
    pulse_up = holder is not None and holder[0] == "pulse"
    ticking = holder is not None and not pulse_up  # a foreground `looop tick`, not a pulse
    none = ("verify", "up_s", "uptime_s", "idle_s", "ask_age_s", "exit_code", "note", "outcome")
    return {
        "id": "pulse",
        "health": "up" if pulse_up else "down",
        "state": "running" if pulse_up else "tick" if ticking else "stopped",
        "label": "pulse",
        "pending_tells": 0,
        "alive": pulse_up,
        **dict.fromkeys(none),
    }


# -- `looop ls` as a table or JSON: what cli/workers.py prints

# HEALTH words of `ls` -> colour (workers/fleet.health, workers/needsinput; others stay plain)
_HEALTH_COLOUR = {
    **dict.fromkeys(("up", "busy", "idle"), "green"),
    **dict.fromkeys(("waiting-ask", "needs-input", "unreachable"), "yellow"),
    **dict.fromkeys(("stuck", "down"), "red"),
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
    # the columns every table has, then those some rows need
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
