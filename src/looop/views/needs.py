"""The needs-you queue: everything that waits on a human, in one list every face shows
(`looop needs`, the web, `looop watch`, MCP's `looop://needs`).

An item is a pending ask, a worker at its CLI's approval prompt or idle at its input box (the
beat's needs-input verdict, views/needsinput), a worker paused at its spend budget or a bound,
one stopped at its provider's usage limit, a start held for a usage window, or a worker
stalled (it failed the same way again and again: views/outcomes.py) that no agent may start
again until a human clears it, or attempts at one task ready for a human to pick one. Each says what
to do as the command that answers it.

Built from the fleet rows a face already has (home/fleet, remote/fleet: local, SSH and
Kubernetes workers alike) and the mailbox; reads no screen, so it is as light as `looop ls`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home import jsonio, store, where
from looop.home.boxfolder import pending_asks
from looop.home.errors import CorruptState
from looop.home.sessionfiles import attempts_of, worker_ids
from looop.home.stamps import parse_utc
from looop.spend.spent import held_for_day
from looop.views import outcomes
from looop.views.workerrows import OVER_BUDGET, age, at_work, verify_result

if TYPE_CHECKING:
    from typing import Any

SPEND = "paused at its spend budget"
# Kinds, in the order the queue shows them: what a human can answer now comes first.
KINDS = ("ask", "approval", "input", "idle", "pick", "stalled", "budget", "limited", "held")


class Need:
    """One thing waiting on a human: `kind` (KINDS), the worker it concerns (an ask's asker),
    its host (None: this machine), since when (unix seconds, None: unknown), what it is,
    `answer`: the looop command that answers it, and `ref`: what identifies it in the queue
    (the ask id, else `<worker>:<kind>`: its default). A plain class: this room loads no
    dataclasses."""

    __slots__ = ("answer", "host", "kind", "ref", "since", "what", "worker")

    def __init__(
        self, kind: str, worker: str, host: str | None, since: float | None, what: str,
        answer: str, ref: str = "",
    ) -> None:  # fmt: skip
        self.kind, self.worker, self.host, self.since = kind, worker, host, since
        self.what, self.answer, self.ref = what, answer, ref or f"{worker}:{kind}"

    def __repr__(self) -> str:
        return f"Need({self.kind!r}, {self.worker!r}, {self.ref!r})"

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _plain(text: object, most: int = 200) -> str:
    """A worker's words as one plain line (no control characters: they are untrusted and
    a face prints them), cut at `most` with an ellipsis."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def _quote(word: str) -> str:
    """A word as a shell would need it in the answer command (ids are plain; options may not be)."""
    if word and all(c.isalnum() or c in "-_.:/@+" for c in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def _proposed(data: str, rec: dict[str, Any]) -> bool:
    """The ask is the decider's landing proposal: looop's own record names it (a box can write
    asks/, so an ask's "land" field alone proves nothing; workers/reviewrounds.py)."""
    worker = rec.get("worker")
    if not isinstance(rec.get("land"), dict) or not isinstance(worker, str):
        return False
    if not worker or "/" in worker or worker.startswith("."):
        return False
    path = where.join(where.join(data, where.REVIEWS), f"{worker}.land.json")
    try:
        got = store.read_json_object(path)
    except (CorruptState, OSError):
        return False
    return got is not None and got.get("ask") == rec.get("id")


def _landing(rec: dict[str, Any], hosts: dict[str, str | None]) -> Need:
    """A landing proposal: approved by landing it (never by an answer), declined by "no"."""
    aid, worker = str(rec["id"]), str(rec["worker"])
    what = f"{_plain(rec.get('prompt') or '')} (decline: looop answer {aid} no)"
    return Need("ask", worker, hosts.get(worker), _ts(rec), what, f"looop land {worker}", aid)


def _ask(rec: dict[str, Any], hosts: dict[str, str | None]) -> Need | None:
    aid = rec.get("id")
    if not isinstance(aid, str) or not aid:
        return None
    worker = rec.get("worker") if isinstance(rec.get("worker"), str) else "?"
    prompt = _plain(rec.get("prompt") or "")
    opts = rec.get("options")
    choice = [_plain(o, 60) for o in opts] if isinstance(opts, list) and opts else []
    first = str(opts[0]) if isinstance(opts, list) and opts else ""  # as it was given
    reply = _quote(first) if first and first.isprintable() else "TEXT"
    said = f"{prompt} [{' / '.join(choice)}]" if choice else prompt
    answer = f"looop answer {aid} {reply}"
    return Need("ask", str(worker), hosts.get(str(worker)), _ts(rec), said, answer, aid)


def _ts(rec: dict[str, Any]) -> float | None:
    ts = rec.get("ts")
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None


def _worker(r: dict[str, Any]) -> Need | None:
    wid, health = str(r.get("id")), str(r.get("health") or "")
    host = r.get("host") if isinstance(r.get("host"), str) else None
    quiet = r.get("last_output_unix")
    since = float(quiet) if isinstance(quiet, int | float) else None
    if health == "needs-input":
        said = _plain(r.get("needs_input") or "its screen waits")
        kind = said.split(":", 1)[0]  # `approval: …`, `idle: …`, a runner's own `custom: …`
        kind = kind if kind in ("approval", "idle") else "input"
        what = said.split(": ", 1)[1] if ": " in said else said
        if kind == "idle":
            return Need(
                kind, wid, host, since, f"its turn is done: {what}", f"looop send {wid} TEXT"
            )
        return Need(kind, wid, host, since, f"its screen asks: {what}", f"looop attach {wid}")
    if health == OVER_BUDGET or (health.startswith("over ") and health.endswith(" limit")):
        what = SPEND if health == OVER_BUDGET else f"paused: {health}"
        return Need("budget", wid, host, since, what, f"looop worker continue {wid} --budget USD")
    if health.startswith("limited until "):
        what = f"at its provider's usage limit, {health}; it goes on by itself then"
        return Need("limited", wid, host, since, what, f"looop kill {wid}")
    if health.startswith("scheduled until "):
        what = f"start held for a usage window, {health}: {_plain(r.get('note') or '')}"
        what = what.rstrip(": ")
        held = r.get("since")
        at = float(held) if isinstance(held, int | float) else None
        return Need("held", wid, host, at, what, f"looop kill {wid}")
    return None


def _day(data: str, n: Need) -> Need:
    """A budget pause that is the daily budget's (loop/workmeter.hold_to_day, every worker at
    once) says so: it goes on by itself at local midnight, or now for the rest of the day."""
    if n.kind != "budget" or n.what != SPEND or (day := held_for_day(data, n.worker)) is None:
        return n
    what = f"held by the daily budget (max_daily_usd) on {day}: it goes on at local midnight"
    return Need(n.kind, n.worker, n.host, n.since, what, f"looop worker continue {n.worker}", n.ref)


def worker_needs(rows: list[dict[str, Any]]) -> list[Need]:
    """What the fleet `rows` alone say waits on a human (the queue without its asks: the
    beat's notifier, human/notify, tells asks where they are made, and a stall where the
    beat finds it: loop/ended.py)."""
    return [n for r in rows if r.get("id") != "pulse" and (n := _worker(r)) is not None]


def _stalled(rec: dict[str, Any], hosts: dict[str, str | None]) -> Need:
    """A stalled worker (views/outcomes.py): ended, and no agent starts it until cleared."""
    wid = str(rec.get("id"))
    since = parse_utc(str(rec.get("ended_at") or ""))
    what = "it failed the same way again and again; no agent starts it until you clear it"
    return Need("stalled", wid, hosts.get(wid), since, what, f"looop worker unstall {wid}")


def _picks(data: str, rows: list[dict[str, Any]]) -> list[Need]:
    """Attempts at one task (`<id>.1` …) all ended or waiting on a human, or one verified,
    none landed yet: a human picks the one to land."""
    live = {str(r.get("id")) for r in rows if at_work(r)}
    out, verify = [], where.join(data, where.VERIFY)
    for group in {s.rsplit(".", 1)[0] for s in worker_ids(data) if "." in s}:
        ids = attempts_of(data, group)
        passed = [i for i in ids if (verify_result(verify, i) or {}).get("pass")]
        if len(ids) < 2 or (live & set(ids) and not passed):
            continue
        if any((outcomes.read_record(data, i) or {}).get("landed") for i in ids):
            continue
        what = f"{len(ids)} attempts ended: pick one"
        if live & set(ids):
            what = f"{len(passed)} of {len(ids)} attempts verified: pick one"
        out.append(Need("pick", group, None, None, what, f"looop review {group}"))
    return out


def needs_at(data: str, rows: list[dict[str, Any]]) -> list[Need]:
    """THE queue: the pending asks in `data` and what the fleet `rows` (fleet_rows' shape,
    home/fleet; the pulse's row is ignored) say waits on a human, by kind then age."""
    hosts = {str(r.get("id")): r.get("host") for r in rows if isinstance(r.get("host"), str)}
    each = [
        _landing(r, hosts) if _proposed(data, r) else _ask(r, hosts) for r in pending_asks(data)
    ]
    out = [n for n in each if n is not None] + [_day(data, n) for n in worker_needs(rows)]
    out += [_stalled(rec, hosts) for rec in outcomes.all_stalled(data)] + _picks(data, rows)
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda n: (order[n.kind], n.since if n.since is not None else 0.0, n.ref))
    return out


def needs_text(items: list[Need], now: float) -> str:
    """`looop needs`: one line per item (kind, worker@host, age, what) and its answer below."""
    if not items:
        return "nothing waits on you\n"
    lines = []
    for n in items:
        where_ = f"{n.worker}@{n.host}" if n.host else n.worker
        ago = age(now - n.since) if n.since is not None else "—"
        lines.append(f"{n.kind:<9} {where_:<20} {ago:>4}  {n.what}")
        lines.append(f"{'':<9} → {n.answer}")
    count = f"{len(items)} waiting on you"
    return "\n".join([count, *lines]) + "\n"


def needs_json(items: list[Need]) -> str:
    """`looop needs --json`: the items as a list of objects."""
    return jsonio.dumps([n.as_json() for n in items], indent=2, sort_keys=True)
