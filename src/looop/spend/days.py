"""Spend per local day, so `looop cost`, `/api/v1/cost`, the dashboard and `/metrics` cost
what the window holds, not every row the home ever wrote.

The day totals (kept split by month: daysfile.py) hold, for each local day, the micro-USD and
row count per source (kind, worker id (none for ticks), runner, model, source), a running sum
per (kind, source), the corrupt lines seen, the last tick ids (`looop cost` counts decides
that left no row) and which bytes of which ledger files they cover: each file (the current
`cost.jsonl` and every `cost/YYYY-MM.jsonl`, rotate.py) by its (st_dev, st_ino), the offset
its last folded line ends at, and its first bytes. A reader folds what each file holds past
its offset (a row whose writer crashed before anything noted it is just such a line: nothing
is lost or counted twice), reads only the months its window covers, and writes the totals
back once that tail passes WRITE_BYTES; a file it does not know it folds whole. Missing,
corrupt, of another zone, or naming a ledger file that shrank, changed its first bytes or is
gone, or a month file that is gone: the reader rebuilds them from every ledger file once
and writes them, budget or none.

Local days of the zone the index names: a reader in another zone rebuilds it for its own.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.home.errors import CorruptState
from looop.spend import rotate
from looop.spend.daysfile import DAYS, FOLDER, Days, Source, Stale, need, need_ticks
from looop.spend.daysfile import load as _load
from looop.spend.daysfile import save as _save
from looop.spend.totals import micros, parse_row

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

__all__ = ["DAYS", "Days", "Held", "Source", "day_totals"]

WRITE_BYTES = 32 << 10  # a reader folds a tail this long in memory (~300 rows); more: it writes
ALL = ""  # since: every month
NONE = "~"  # since: no month, the running sums only (`/metrics`); sorts after every month
_HEAD = 32
_CHUNK = 1 << 20


def _text(v: object) -> str:
    return v if isinstance(v, str) else ""


def _fold_line(d: Days, raw: bytes, clock: Clock) -> None:
    if not raw.strip():
        return
    row = parse_row(raw.decode("utf-8", "replace"))
    if row is None:
        d.bad += 1
        return
    obj, amount, when = row
    tm = clock.local_tm(when)
    day = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
    kind = _text(obj.get("kind"))
    wid = _text(obj.get("id"))
    src = (kind, "" if kind == "tick" else wid, _text(obj.get("runner")))
    key: Source = (*src, _text(obj.get("model")), _text(obj.get("source")))
    usd = micros(amount)
    cell = d.days.setdefault(day, {}).setdefault(key, [0, 0])
    cell[0] += usd
    cell[1] += 1
    d.dirty.add(day[:7])
    run = d.sums.setdefault((kind, key[4]), [0, 0])
    run[0] += usd
    run[1] += 1
    if kind == "tick" and wid:
        d.new_ticks.pop(wid, None)  # re-inserted: the dict keeps the newest last
        d.new_ticks[wid] = int(when)


def _fold(d: Days, fd: int, start: int, size: int, clock: Clock) -> int:
    """Fold the whole lines of [start, size) of `fd`; the offset the last one ends at."""
    rest = b""
    at = start
    while at < size:
        got = os.pread(fd, min(size - at, _CHUNK), at)
        if not got:
            break
        at += len(got)
        buf = rest + got
        cut = buf.rfind(b"\n") + 1
        for raw in buf[:cut].split(b"\n"):
            _fold_line(d, raw, clock)
        rest = buf[cut:]
    return at - len(rest)


def zone_of(clock: Clock) -> str:
    """The zone's name and its offsets in winter and summer: a reader in another zone (or
    under other rules) rebuilds the days for its own."""
    marks = (979560000, 995198400)  # 2001-01-15 and 2001-07-15, noon UTC
    offsets = [clock.local(t).utcoffset() for t in marks]
    return f"{clock.zone()}|" + "|".join(str(o) for o in offsets)


def _open_all(data: str) -> list[tuple[int, os.stat_result]]:
    """An fd and its stat for every ledger file there is, oldest first. CorruptState for
    one that exists but cannot be read."""
    out: list[tuple[int, os.stat_result]] = []
    try:
        for path in [*rotate.archives(data), os.path.join(data, rotate.LEDGER)]:
            try:
                fd = os.open(path, rotate.FLAGS)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise CorruptState(
                    f"cannot read {path}: {e.strerror}; fix its permissions"
                ) from None
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                out.append((fd, st))
            else:
                os.close(fd)
    except BaseException:
        for fd, _ in out:
            os.close(fd)
        raise
    return out


def _catch_up(d: Days, fds: list[tuple[int, os.stat_result]], clock: Clock) -> int | None:
    """Fold every file's bytes past what `d` covers; the bytes folded, or None when `d` no
    longer matches the files (one is gone, shrank or was rewritten): rebuild."""
    known = {(f[0], f[1]): f for f in d.files}
    files: list[list[Any]] = []
    folded = 0
    for fd, st in fds:
        head = os.pread(fd, _HEAD, 0).hex()
        f = known.pop((st.st_dev, st.st_ino), None)
        start = 0
        if f is not None:
            start = f[2]
            if start > st.st_size or not head.startswith(f[3]) or (start and not f[3]):
                return None
        end = _fold(d, fd, start, st.st_size, clock)
        folded += end - start
        files.append([st.st_dev, st.st_ino, end, head[: 2 * min(end, _HEAD)]])
    if known:
        return None  # a file it counted is gone: its rows must leave the totals too
    d.files = files
    return folded


class Held:
    """One process's folded ledger between its reads (`looop web`'s): caught up in place on
    each read rather than loaded again, the months it read kept. Dropped when the index
    changed under it (another reader rebuilt or caught it up) or a fold failed part way. One
    reader at a time: its owner locks."""

    def __init__(self) -> None:
        self.days: Days | None = None
        self.seen: tuple[int, int, int, int] | None = None  # the index as loaded or saved
        self.unsaved = 0  # ledger bytes folded in memory since


def _stat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _ready(d: Days, since: str, ticks: bool, saving: bool) -> None:
    """Load what the caller reads (the months from `since`'s on, the ticks) and what a save
    writes. Stale when a file the index names cannot be read."""
    month = since[:7]
    for m in sorted({*d.months, *(day[:7] for day in d.days)}):
        if m >= month or (saving and m in d.dirty):
            need(d, m)
    if ticks or (saving and d.new_ticks):
        need_ticks(d)


def _caught_up(
    path: str,
    zone: str,
    fds: list[tuple[int, os.stat_result]],
    clock: Clock,
    held: Held | None,
    want: tuple[str, bool],
) -> tuple[Days, int, bool]:
    """The days caught up to every file, the bytes folded since the days file was written,
    and whether they were rebuilt."""
    d: Days | None = None
    before = 0
    kept = held.days if held is not None else None
    if held is not None and kept is not None and kept.zone == zone and held.seen == _stat(path):
        d, before = kept, held.unsaved
    for _ in range(2):  # again once: another reader's save may have let go what it named
        if d is None:
            d, before = _load(path, zone), 0
        if d is None:
            break
        try:
            folded = _catch_up(d, fds, clock)
            if folded is None:
                break
            folded += before
            _ready(d, *want, folded >= WRITE_BYTES)
            return d, folded, False
        except Stale:
            d = None
    d = Days(zone, os.path.join(os.path.dirname(path), FOLDER))
    d.ticks = {}  # nothing to read: every month and tick comes from the ledger files
    folded = _catch_up(d, fds, clock)
    assert folded is not None  # a fresh one knows no file
    _ready(d, *want, True)
    return d, max(folded, WRITE_BYTES), True


def day_totals(
    data: str,
    clock: Clock,
    held: Held | None = None,
    since: str = ALL,
    ticks: bool = False,
) -> Days:
    """The ledger per local day, every file of it, caught up to now (and written back when
    it was rebuilt or the tail it folded was long). Whole are the months from local day
    `since`'s on (ALL: every one; NONE: none, only the running sums), and with `ticks` the
    costed tick ids. With `held`, the days it kept from the last read are caught up instead
    of loaded. CorruptState when a ledger file cannot be read."""
    zone = zone_of(clock)
    path = os.path.join(data, DAYS)
    fds = _open_all(data)
    try:
        d, folded, rebuilt = _caught_up(path, zone, fds, clock, held, (since, ticks))
    except BaseException:
        if held is not None:
            held.days = None  # part folded: its counts no longer match its offsets
        raise
    finally:
        for fd, _ in fds:
            os.close(fd)
    d.exists = bool(fds)
    if folded >= WRITE_BYTES:
        _save(path, d, sweep=rebuilt)
        folded = 0
    if held is not None:
        held.days, held.seen, held.unsaved = d, _stat(path), folded
    return d
