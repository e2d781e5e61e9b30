"""Each worker's spend as the pulse's last beat metered it (loop/workmeter.py writes
`<data>/.worker-meter.json`): what `ls`, sys-sessions and the dashboard show. Core only, so
every room that shows a worker can read it."""

from __future__ import annotations

import os

from looop.core import ljson, store

TYPE_CHECKING = False  # `looop ls` reads this on its fast path: no typing, no dataclasses

if TYPE_CHECKING:
    from typing import Any

STATE = ".worker-meter.json"
VERSION = 1


class Spend:
    """One worker's metered spend: USD so far, the CLI read, the last model seen; `usd` is
    None for a worker whose CLI leaves no record looop reads (unmetered)."""

    __slots__ = ("cli", "model", "usd", "wid")

    def __init__(self, wid: str, usd: float | None, cli: str, model: str | None) -> None:
        self.wid, self.usd, self.cli, self.model = wid, usd, cli, model

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spend) and (self.wid, self.usd, self.cli, self.model) == (
            other.wid,
            other.usd,
            other.cli,
            other.model,
        )

    def __repr__(self) -> str:
        return f"Spend({self.wid!r}, {self.usd!r}, {self.cli!r}, {self.model!r})"


def read_state(data: str) -> dict[str, Any]:
    """The meter's own file (our writes only: the plain parser); missing or corrupt: empty,
    and each worker's file is counted again from its start, the ledger's rows kept."""
    try:
        got = ljson.loads(store.read_regular(os.path.join(data, STATE)).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        got = {}
    obj: dict[str, Any] = got if isinstance(got, dict) else {}
    w = obj.get("workers")
    if obj.get("v") != VERSION or not isinstance(w, dict):
        return {"v": VERSION, "workers": {}}
    return obj


def spent(data: str) -> dict[str, Spend]:
    """What the last beat's meter counted per worker (readers: ls, status, the dashboard)."""
    out: dict[str, Spend] = {}
    for wid, w in read_state(data)["workers"].items():
        if not isinstance(w, dict) or "cli" not in w:
            continue
        cli = str(w.get("cli"))
        if w.get("unmetered"):
            out[wid] = Spend(wid, None, cli, None)
            continue
        got = w.get("file")
        f: dict[str, Any] = got if isinstance(got, dict) else {}
        m = f.get("model")
        rec = w.get("recorded", 0)
        usd = rec / 1_000_000 if isinstance(rec, int) else 0.0
        out[wid] = Spend(wid, usd, cli, m if isinstance(m, str) else None)
    return out


# -- per-worker budgets ---------------------------------------------------------------------
# `<data>/budgets/<id>.json` {"usd", "policy"} is set at `worker start --budget`; the beat's
# meter writes `<id>.over` once the worker's metered spend reaches it and acts on the policy.

BUDGETS = "budgets"
POLICIES = ("pause", "stop")


def _budget_path(data: str, wid: str, ext: str) -> str:
    return os.path.join(data, BUDGETS, f"{wid}.{ext}")


def set_budget(data: str, wid: str, usd: float | None, policy: str = "pause") -> None:
    """A worker's spend ceiling in USD (None lifts it) and what happens at it."""
    if usd is None:
        store.remove(_budget_path(data, wid, "json"))
        return
    store.write_json(_budget_path(data, wid, "json"), {"policy": policy, "usd": usd})


def budgets(data: str) -> dict[str, tuple[float, str]]:
    """Each worker's budget (usd, policy); an unreadable one is left out (and said by `ls`)."""
    out: dict[str, tuple[float, str]] = {}
    try:
        with os.scandir(os.path.join(data, BUDGETS)) as it:
            names = [e.name[:-5] for e in it if e.name.endswith(".json")]
    except OSError:
        return out
    for wid in names:
        try:
            obj = ljson.loads(store.read_regular(_budget_path(data, wid, "json"), 4096).decode())
        except (OSError, ValueError, RecursionError, UnicodeDecodeError):
            continue
        usd = obj.get("usd") if isinstance(obj, dict) else None
        policy = obj.get("policy") if isinstance(obj, dict) else None
        if isinstance(usd, int | float) and not isinstance(usd, bool) and usd > 0:
            out[wid] = (float(usd), policy if policy in POLICIES else "pause")
    return out


def over_budget(data: str) -> set[str]:
    """The workers the meter found at their budget (until a human lets them go on)."""
    try:
        with os.scandir(os.path.join(data, BUDGETS)) as it:
            return {e.name[:-5] for e in it if e.name.endswith(".over")}
    except OSError:
        return set()


def mark_over(
    data: str, wid: str, usd: float, budget: float, policy: str, day: str | None = None
) -> None:
    """`day` (the local date, ISO): held by the daily fleet budget, not its own; the beat
    lets it go on once that day is over."""
    obj: dict[str, Any] = {"budget": budget, "policy": policy, "usd": usd}
    if day is not None:
        obj["day"] = day
    store.write_json(_budget_path(data, wid, "over"), obj)


def held_for_day(data: str, wid: str) -> str | None:
    """The day a worker's over mark holds it for the daily budget (None: its own budget)."""
    try:
        obj = ljson.loads(store.read_regular(_budget_path(data, wid, "over"), 4096).decode())
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        return None
    day = obj.get("day") if isinstance(obj, dict) else None
    return day if isinstance(day, str) else None


def let_go_on(data: str, wid: str) -> str | None:
    """The day a human let this worker go on past the daily budget (`worker continue`)."""
    try:
        day = store.read_regular(_budget_path(data, wid, "let"), 64).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return day or None


def clear_over(data: str, wid: str) -> bool:
    """A human lets the worker go on; one held by the daily budget is not held again that
    day (`<id>.let` names it)."""
    day = held_for_day(data, wid)
    if day is not None:
        store.atomic_write(_budget_path(data, wid, "let"), day + "\n")
    return store.remove(_budget_path(data, wid, "over"))
