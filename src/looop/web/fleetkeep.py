"""/sessions kept per change: the fleet's rows are read again only when a file they come from
changed (web/cache.Changes: a status, a note, a supervisor's lock closed at its exit) or every
REREAD_S (what no file shows: a worker turning stuck, a usage window's reset). Between reads
each answer moves the ages on by the time gone since the read, so they stay true to the second.

Each answer carries a weak ETag naming the rows without their ages: a poller that sends it
back (If-None-Match) is told 304 while the fleet is the same, and moves the ages on itself."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from looop.core.context import Ctx
from looop.home.clock import Clock
from looop.web import reads
from looop.web.cache import Changes, Kept, stat_of, state_inputs

REREAD_S = 5  # the longest a row may wait for what only time changes
AGES = ("up_s", "uptime_s", "idle_s", "ask_age_s")  # each `now - when`: moved on per answer

Rows = list[dict[str, Any]]
Encode = Callable[[object], bytes]


class Read:
    """One reading of the fleet: its rows, when they were read and the tag of their content."""

    def __init__(self, rows: Rows, at: float, encode: Encode) -> None:
        self.rows, self.at = rows, at
        still = [{k: v for k, v in r.items() if k not in AGES} for r in rows]
        self.tag = 'W/"' + hashlib.sha256(encode(still)).hexdigest()[:20] + '"'

    def body(self, now: float, encode: Encode) -> bytes:
        gone = max(0.0, now - self.at)
        if not gone:
            return encode(self.rows)
        moved = []
        for r in self.rows:
            m = dict(r)
            for k in AGES:
                v = m.get(k)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    m[k] = v + gone
            moved.append(m)
        return encode(moved)


def steady(before: Rows, rows: Rows, at: float) -> None:
    """A last output within a second of the one read before is that one: it is derived from
    the monotonic clock (home/lastoutput.py), so it wobbles read to read, and a wobble is no
    change of the fleet (nor of its ETag)."""
    was = {r["id"]: r.get("last_output_unix") for r in before}
    for r in rows:
        old, new = was.get(r["id"]), r.get("last_output_unix")
        if isinstance(old, float) and isinstance(new, float) and abs(new - old) < 1.0:
            r["last_output_unix"] = old
            r["idle_s"] = at - old


def read_key(clock: Clock, changed: Callable[[], object]) -> tuple[object, ...]:
    """What a reading holds for: the changes seen and the REREAD_S window."""
    return (changed(), int(clock.now() // REREAD_S))


def kept_spend(ctx: Ctx) -> Callable[[], dict[str, float]]:
    """Today's spend by worker, read again only when the ledger, its day totals or the local
    date moved: loading the day totals is most of a fleet read on a home of a year of rows."""
    data = os.fspath(ctx.paths.data)
    inputs = [os.path.join(data, n) for n in ("cost.jsonl", "cost", ".cost-days.json")]
    kept: list[tuple[object, dict[str, float]]] = []

    def get() -> dict[str, float]:
        key = (ctx.clock.local_tm(ctx.clock.now())[:3], *(stat_of(p) for p in inputs))
        if not kept or kept[0][0] != key:
            kept[:] = [(key, reads.spend_by_worker(ctx))]
        return kept[0][1]

    return get


def kept_fleet(ctx: Ctx, changes: Changes | None, every: bool, encode: Encode) -> Kept[Read]:
    """The fleet's rows (reads.sessions), read again only when read_key moves."""

    def changed() -> object:
        if changes is not None:
            return changes.now()
        return tuple(stat_of(p) for p in state_inputs(ctx.paths, ctx.env))  # no inotify

    last: list[Read] = []
    spend = kept_spend(ctx)

    def build() -> Read:
        at = ctx.clock.now()
        rows = reads.sessions(ctx, every, spend())
        if last:
            steady(last[0].rows, rows, at)
        last[:] = [Read(rows, at, encode)]
        return last[0]

    return Kept(lambda: read_key(ctx.clock, changed), build)


async def answer(kept: Kept[Read], request: Request, clock: Clock, encode: Encode) -> Response:
    """The rows, or 304 when the asker holds them already (its ETag)."""
    got = await kept.get()
    head = {"ETag": got.tag, "Cache-Control": "no-cache"}
    if matches(request.headers.get("if-none-match"), got.tag):
        return Response(status_code=304, headers=head)
    return Response(got.body(clock.now(), encode), media_type="application/json", headers=head)


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether a request's If-None-Match names tag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))
