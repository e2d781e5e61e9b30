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
