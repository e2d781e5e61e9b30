"""The fleet as `looop ls` and `worker list` show it: the pulse (who holds the beat lock:
home/locks.py) and the workers with health, ages and state. Light (plain-string paths, no
typing or datetime), as the home is. The workers on other hosts are
the remote wing's (remote/fleet.py), handed in as `far` and asked only when the home has
some."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import where
from looop.home.locks import beat_holder_at
from looop.home.sessionfiles import list_light
from looop.home.stamps import parse_utc
from looop.spend.spent import over_budget, over_limit, spent
from looop.spend.usagewindows import held_rows
from looop.views.workerrows import OVER_BUDGET, worker_rows

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
) -> list[dict[str, Any]]:
    """fleet_rows from the data dir as a string and the knob it needs: `looop ls` answers
    through this. `env`:
    the environment remote hosts are reached with (a kubeconfig's place; None: this
    process's own); `far`: the workers on other hosts (remote/fleet.py; None: not asked)."""

    # no screen read here: `ls` shows the needs-input verdict of the last beat's look
    # without --all the finished sessions are never shown: not read past their status.json
    rows = worker_rows(data, list_light(data, not all_sessions), clock, stuck_secs)
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
    return {
        "id": "pulse",
        "health": "up" if pulse_up else "down",
        "state": "running" if pulse_up else "tick" if ticking else "stopped",
        "label": "pulse",
        "verify": None,
        "up_s": None,
        "uptime_s": None,
        "idle_s": None,
        "ask_age_s": None,
        "pending_tells": 0,
        "alive": pulse_up,
        "exit_code": None,
        "note": None,
        "outcome": None,
    }
