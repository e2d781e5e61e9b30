"""What the gate saved: each beat that skips the model (the world unchanged) is counted with
what a decide would have cost — the median of this home's last decides' costs — next to the
decides made. A skip beat writes nothing but its events.jsonl record (`world_unchanged`):
that line is its count. `<data>/.savings.json`, written only by a decide, keeps per local day
{decides, skipped, saved micro-USD} (the last days only), the trailing decide costs and the
mark in events.jsonl its skips are folded up to; a decide folds the skips after the mark
(rotated since: the rest of events.jsonl.1 first; rotated twice: those skips are lost).
`savings_view` — the tally plus the skips recorded after the mark — is the one reckoning
every face shows (status, `looop cost`, the web page, /metrics). In the hot room: status
reads it on its fast path (no typing, no datetime; bytes scanned, SCAN_BYTES at most)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from looop.home import jsonio, store
from looop.home.stamps import parse_z
from looop.home.where import EVENTS
from looop.spend import sane_usd

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

FILE = ".savings.json"
VERSION = 2  # 1 (before the mark, each skip beat wrote its own count): read as a fresh one
TRAIL = 20  # decides whose median prices a skipped beat
KEEP_DAYS = 8  # a week, and the day it began on
WEEK_DAYS = 7
# the skip beat's one events.jsonl record (loop/tick.py `world_unchanged`, no fields, keys
# sorted): at a line's start, so no field of another record can pass for it
SKIP_LINE = b'\n{"event":"world_unchanged","ts":"'
SCAN_BYTES = 16 << 20  # events read per reckoning, past the mark (the rest waits its turn)
HEAD_BYTES = 512


def _path(data: str) -> str:
    return os.path.join(data, FILE)


def _day(clock: Clock, ts: float) -> str:
    return time.strftime("%Y-%m-%d", clock.local_tm(ts))


def _read(data: str) -> dict[str, Any]:
    """The tally as kept; unreadable or foreign: a fresh one (a count lost, never a crash)."""
    try:
        obj = jsonio.loads(store.read_regular(_path(data), 65536).decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        return {"v": VERSION, "costs": [], "days": {}, "mark": None}
    costs = obj.get("costs")
    days = obj.get("days")
    obj["costs"] = [c for c in costs if _count(c)][-TRAIL:] if isinstance(costs, list) else []
    obj["days"] = (
        {k: v for k, v in days.items() if isinstance(v, dict)} if isinstance(days, dict) else {}
    )
    return obj


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _n(day: dict[str, Any], key: str) -> int:
    """A day's count under `key`, 0 when it is not one."""
    v = day.get(key)
    return v if isinstance(v, int) and _count(v) else 0


def _mark(obj: dict[str, Any]) -> list[int] | None:
    """Where the tally's skips end in events.jsonl: [inode, offset, checksum of its first line];
    torn or foreign: none (the current file counted from its start)."""
    m = obj.get("mark")
    return list(m) if isinstance(m, list) and len(m) == 3 and all(map(_count, m)) else None


def _head(fd: int) -> int:
    """The file's identity past a reused inode number: its first line (a stamp in it)."""
    first = os.pread(fd, HEAD_BYTES, 0)
    # a checksum without zlib's dlopen (status reads this): the line as a number, mod a prime
    return int.from_bytes(first[: first.find(b"\n") + 1], "big") % 2_147_483_647


def _scan(
    path: str, mark: list[int] | None, clock: Clock, got: dict[str, int], left: list[int]
) -> list[int] | None:
    """Count the skip records in path after mark (when mark is this file's; else from its
    start) into got per local day, reading at most left[0] bytes; the mark where it stopped
    (None: no such file)."""
    try:
        f = store.open_regular(path, follow=False)
    except OSError:
        return None
    with f:
        fd = f.fileno()
        ino, size, head = os.fstat(fd).st_ino, os.fstat(fd).st_size, _head(fd)
        start = 0
        if mark is not None and mark[0] == ino and mark[2] == head and mark[1] <= size:
            start = mark[1]
        f.seek(start)
        buf = f.read(max(0, min(size - start, left[0])))
    whole = buf[: buf.rfind(b"\n") + 1]  # a line still being written waits for the next read
    left[0] -= len(whole)
    _tally_lines(b"\n" + whole, clock, got)
    return [ino, start + len(whole), head]


def _tally_lines(buf: bytes, clock: Clock, got: dict[str, int]) -> None:
    days: dict[bytes, str] = {}  # a UTC minute's local day, worked out once
    i = buf.find(SKIP_LINE)
    while i >= 0:
        ts = buf[i + len(SKIP_LINE) : i + len(SKIP_LINE) + 24]
        minute = ts[:16]
        day = days.get(minute)
        if day is None:
            t = parse_z(minute.decode("ascii", "replace") + ":00Z")
            day = days[minute] = _day(clock, t) if t is not None else ""
        if day:
            got[day] = got.get(day, 0) + 1
        i = buf.find(SKIP_LINE, i + len(SKIP_LINE))


def _pending(
    data: str, clock: Clock, mark: list[int] | None
) -> tuple[dict[str, int], list[int] | None]:
    """The skip beats recorded in events.jsonl after the mark, per local day, and the mark
    past them. Rotated since the mark: the rest of events.jsonl.1 counts first (all of it
    when the marked file is gone: rotated twice, its skips lost). At most SCAN_BYTES are
    read; the rest waits for the next fold (status undercounts until then)."""
    cur = os.path.join(data, EVENTS)
    got: dict[str, int] = {}
    left = [SCAN_BYTES]
    new = None
    if mark is not None and _ident(cur) != mark[0::2]:
        new = _scan(cur + ".1", mark, clock, got, left)
        if left[0] <= 0 and new is not None:
            return got, new
    # no events.jsonl yet: every record to come is after the mark (inode 0 is no file's)
    return got, _scan(cur, mark, clock, got, left) or new or mark or [0, 0, 0]


def _ident(path: str) -> list[int] | None:
    """A file's [inode, checksum of its first line], as a mark names it."""
    try:
        with store.open_regular(path, follow=False) as f:
            return [os.fstat(f.fileno()).st_ino, _head(f.fileno())]
    except OSError:
        return None


def median_micros(costs: list[int]) -> int:
    """The trailing decides' median cost (0 with none yet: a skip saves nothing known)."""
    if not costs:
        return 0
    s = sorted(costs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


def _fold(obj: dict[str, Any], got: dict[str, int]) -> None:
    """Add skips counted per local day to the tally's days, each priced at the trailing
    median decide cost."""
    price = median_micros(obj["costs"])
    for d, n in got.items():
        day = obj["days"].setdefault(d, {})
        day["skipped"], day["saved"] = _n(day, "skipped") + n, _n(day, "saved") + n * price


def note_decide(data: str, clock: Clock, usd: float | None) -> None:
    """A decide made: the skip beats recorded since the last one are folded into the tally
    (priced at the trailing median), then its cost (None: the runner said none) joins it.
    A skip beat itself writes nothing here: its events.jsonl record is its count."""
    sane = sane_usd(usd)  # a runner's word: NaN, inf or a fortune is no sample
    cost = round(sane * 1_000_000) if sane is not None and sane > 0 else None
    obj = _read(data)
    got, mark = _pending(data, clock, _mark(obj))
    _fold(obj, got)
    if mark is not None:
        obj["mark"] = mark
    day = obj["days"].setdefault(_day(clock, clock.now()), {})
    day["decides"] = _n(day, "decides") + 1
    if cost is not None:
        obj["costs"] = [*obj["costs"], cost][-TRAIL:]
    keep = sorted(obj["days"])[-KEEP_DAYS:]
    obj["days"] = {k: obj["days"][k] for k in keep}
    try:
        store.write_json(_path(data), obj, durable=False)
    except OSError:
        pass  # a full disk loses a count, never a beat


def savings_view(data: str, clock: Clock) -> dict[str, Any]:
    """Decides made, beats skipped and dollars saved, today and over the last 7 local days,
    and the median decide cost a skip is priced at: what every face shows. The tally as
    folded at the last decide, and the skips recorded in events.jsonl since."""
    obj = _read(data)
    _fold(obj, _pending(data, clock, _mark(obj))[0])
    now = clock.now()
    today = _day(clock, now)
    week = {_day(clock, now - k * 86400) for k in range(WEEK_DAYS)} | {today}
    out: dict[str, Any] = {"median_decide_usd": median_micros(obj["costs"]) / 1_000_000}
    for name, days in (("today", {today}), ("week", week)):
        got = [obj["days"][d] for d in days if d in obj["days"]]
        out[name] = {k: sum(_n(g, k) for g in got) for k in ("decides", "skipped")}
        out[name]["saved_usd"] = sum(_n(g, "saved") for g in got) / 1_000_000
    return out


def savings_line(view: dict[str, Any]) -> str:
    """What the gate saved, in one line, as status and `looop cost` print it."""
    t, w = view["today"], view["week"]
    return (
        f"${t['saved_usd']:.4f} today ({t['skipped']} beats skipped, "
        f"{t['decides']} decides); ${w['saved_usd']:.4f} this week ({w['skipped']} skipped, "
        f"{w['decides']} decides) — a skip priced at the median decide "
        f"${view['median_decide_usd']:.4f}"
    )
