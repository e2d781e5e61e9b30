"""Spend per local day, so `looop cost all`, `/api/v1/cost`, the dashboard and `/metrics` cost
what the window holds, not every row the home ever wrote.

`<data>/.cost-days.json` holds, for each local day, the micro-USD and row count per source
(kind, worker id (none for ticks), runner, model, source), the corrupt lines seen, the last
tick ids (`looop cost` counts decides that left no row) and which bytes of which ledger files
it covers: each file (the current `cost.jsonl` and every `cost/YYYY-MM.jsonl`, rotate.py) by
its (st_dev, st_ino), the offset its last folded line ends at, and its first bytes. A reader
folds what each file holds past its offset (a row whose writer crashed before anything
noted it is just such a line: nothing is lost or counted twice) and writes the file back once
that tail passes WRITE_BYTES; a file it does not know it folds whole. Missing, corrupt, of
another zone, or naming a file that shrank, changed its first bytes or is gone: the reader
rebuilds it from every ledger file once and writes it, budget or none.

Local days of the zone the file names: a reader in another zone rebuilds it for its own.
"""

from __future__ import annotations

import os
import stat

from looop.home import jsonio, stamps, store
from looop.home.cost import rotate
from looop.home.cost.money import sane_usd
from looop.home.cost.totals import micros
from looop.home.errors import CorruptState

TYPE_CHECKING = False  # the hot room loads no `typing`

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

DAYS = ".cost-days.json"
VERSION = 1
WRITE_BYTES = 32 << 10  # a reader folds a tail this long in memory (~300 rows); more: it writes
TICK_IDS = 5000  # runs_keep is 50 by default: the costed decides `looop cost` looks up
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
_HEAD = 32
_CHUNK = 1 << 20

Source = tuple[str, str, str, str, str]  # kind, worker id ("" for ticks), runner, model, source


class Days:
    """The folded ledger: per local day (ISO) per source [micro-USD, rows]."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.files: list[list[Any]] = []  # [dev, ino, end, head hex]
        self.days: dict[str, dict[Source, list[int]]] = {}
        self.bad = 0
        self.ticks: dict[str, int] = {}  # costed tick ids -> the second of their last row
        self.ticks_before = 0  # ids of rows up to this second were let go (TICK_IDS)
        self.exists = False


def _text(v: object) -> str:
    return v if isinstance(v, str) else ""


def _fold_line(d: Days, raw: bytes, clock: Clock) -> None:
    if not raw.strip():
        return
    try:
        obj = jsonio.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        obj = None
    amount = sane_usd(obj.get("cost_usd")) if isinstance(obj, dict) else None
    ts = obj.get("ts") if isinstance(obj, dict) else None
    when = stamps.parse_utc(ts) if isinstance(ts, str) else None
    if obj is None or amount is None or when is None:
        d.bad += 1
        return
    tm = clock.local_tm(when)
    day = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
    kind = _text(obj.get("kind"))
    wid = _text(obj.get("id"))
    src = (kind, "" if kind == "tick" else wid, _text(obj.get("runner")))
    key: Source = (*src, _text(obj.get("model")), _text(obj.get("source")))
    cell = d.days.setdefault(day, {}).setdefault(key, [0, 0])
    cell[0] += micros(amount)
    cell[1] += 1
    if kind == "tick" and wid:
        d.ticks.pop(wid, None)  # re-inserted: the dict keeps the newest last
        d.ticks[wid] = int(when)


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


def _load(path: str, zone: str) -> Days | None:
    try:
        obj = jsonio.loads(store.read_text(path) or "null")
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("v") != VERSION or obj.get("zone") != zone:
        return None
    d = Days(zone)
    try:
        for f in obj["files"]:
            dev, ino, end, head = f
            if not (type(dev) is int and type(ino) is int and type(end) is int and end >= 0):
                return None
            d.files.append([dev, ino, end, str(head)])
        for day, rows in obj["days"].items():
            cells = d.days.setdefault(str(day), {})
            for *src, usd, n in rows:
                if len(src) != 5 or type(usd) is not int or type(n) is not int:
                    return None
                cells[(src[0], src[1], src[2], src[3], src[4])] = [usd, n]
        d.bad, d.ticks_before = int(obj["bad"]), int(obj["ticks_before"])
        d.ticks = {str(k): int(v) for k, v in obj["ticks"]}
    except (KeyError, TypeError, ValueError):
        return None
    return d


def _save(path: str, d: Days) -> None:
    if not os.path.isdir(os.path.dirname(path) or "."):
        return  # a pure read never makes the data dir
    body = {
        "v": VERSION,
        "zone": d.zone,
        "files": d.files,
        "days": {day: [[*k, *v] for k, v in cells.items()] for day, cells in d.days.items()},
        "bad": d.bad,
        "ticks": [[k, v] for k, v in d.ticks.items()],
        "ticks_before": d.ticks_before,
    }
    try:
        # not fsynced: after a crash it is caught up or rebuilt from the ledger files
        store.atomic_write(path, jsonio.canonical(body) + "\n", durable=False)
    except OSError:
        pass  # read-only data dir: the next reader folds again


def _open_all(data: str) -> list[tuple[int, os.stat_result]]:
    """An fd and its stat for every ledger file there is, oldest first. CorruptState for
    one that exists but cannot be read."""
    out: list[tuple[int, os.stat_result]] = []
    try:
        for path in [*rotate.archives(data), os.path.join(data, rotate.LEDGER)]:
            try:
                fd = os.open(path, _FLAGS)
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


def _trim(d: Days) -> None:
    if len(d.ticks) <= TICK_IDS:
        return
    ids = list(d.ticks.items())
    cut = len(ids) - TICK_IDS
    d.ticks_before = max([d.ticks_before, *(t for _, t in ids[:cut])])
    d.ticks = dict(ids[cut:])


class Held:
    """One process's folded ledger between its reads (`looop web`'s): caught up in place on
    each read rather than parsed again from the days file, whose cost grows with every day the
    home has spent on. Dropped when that file changed under it (another reader rebuilt or
    caught it up) or a fold failed part way. One reader at a time: its owner locks."""

    def __init__(self) -> None:
        self.days: Days | None = None
        self.seen: tuple[int, int, int, int] | None = None  # the days file as loaded or saved
        self.unsaved = 0  # ledger bytes folded in memory since


def _stat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _caught_up(
    path: str, zone: str, fds: list[tuple[int, os.stat_result]], clock: Clock, held: Held | None
) -> tuple[Days, int]:
    """The days caught up to every file, and the bytes folded since the days file was written."""
    d: Days | None = None
    before = 0
    kept = held.days if held is not None else None
    if held is not None and kept is not None and kept.zone == zone and held.seen == _stat(path):
        d, before = kept, held.unsaved
    if d is None:
        d = _load(path, zone)
    folded = None if d is None else _catch_up(d, fds, clock)
    if d is None or folded is None:
        d = Days(zone)
        folded = _catch_up(d, fds, clock)
        assert folded is not None  # a fresh one knows no file
        return d, max(folded, WRITE_BYTES)
    return d, before + folded


def day_totals(data: str, clock: Clock, held: Held | None = None) -> Days:
    """The ledger per local day, every file of it, caught up to now (and written back when
    it was rebuilt or the tail it folded was long). With `held`, the days it kept from the
    last read are caught up instead of loaded. CorruptState when a ledger file cannot be
    read."""
    zone = zone_of(clock)
    path = os.path.join(data, DAYS)
    fds = _open_all(data)
    try:
        d, folded = _caught_up(path, zone, fds, clock, held)
    except BaseException:
        if held is not None:
            held.days = None  # part folded: its counts no longer match its offsets
        raise
    finally:
        for fd, _ in fds:
            os.close(fd)
    _trim(d)
    d.exists = bool(fds)
    if folded >= WRITE_BYTES:
        _save(path, d)
        folded = 0
    if held is not None:
        held.days, held.seen, held.unsaved = d, _stat(path), folded
    return d
