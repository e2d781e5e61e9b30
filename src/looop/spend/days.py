"""Spend per local day, so `looop cost`, `/api/v1/cost`, the dashboard and `/metrics` cost
what the window holds, not every row the home ever wrote.

The day totals (kept split by month: below) hold, for each local day, the micro-USD and row count
per source (kind, worker id (none for ticks), runner, model, source), a running sum per (kind,
source), the corrupt lines seen, the last tick ids (`looop cost` counts decides that left no row)
and which bytes of which ledger files they cover: each file (the current `cost.jsonl` and every
`cost/YYYY-MM.jsonl`, totals.rotate_if_due) by its (st_dev, st_ino), the offset its last folded
line ends at, and its first bytes. A reader folds what each file holds past its offset (a row whose
writer crashed before anything noted it is just such a line: nothing is lost or counted twice),
reads only the months its window covers, and writes the totals back once that tail passes
WRITE_BYTES; a file it does not know it folds whole. Missing, corrupt, of another zone, or naming a
ledger file that shrank, changed its first bytes or is gone, or a month file that is gone: the
reader rebuilds them from every ledger file once and writes them, budget or none.

Local days of the zone the index names: a reader in another zone rebuilds it for its own.

Where they are kept: split by month, so a window reads the months it covers, not every day the
home ever spent on.

`<data>/.cost-days.json`, the index: the zone, which bytes of which ledger files are folded,
the corrupt lines seen, each (kind, source)'s running sum (what `/metrics` shows), and the
name of each month's file and of the costed tick ids' file, both under `<data>/.cost-days/`.
A month's file holds its local days' [micro-USD, rows] per source. Files are never rewritten
in place: a save writes the months it changed under new names (`YYYY-MM.<gen>-<pid>.json`,
unique: the index's generation and the writer), then the index by rename, then lets the
replaced files go. A reader sees an old index and its files or the new one and its files; a
month file the index names that is missing or unreadable is stale (rebuilt).

Version 1 kept everything in the one file: read as another version's, it is rebuilt.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.home import jsonio, store
from looop.home.errors import CorruptState
from looop.spend import totals
from looop.spend.totals import micros, parse_row

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

WRITE_BYTES = 32 << 10  # a reader folds a tail this long in memory (~300 rows); more: it writes
ALL = ""  # since: every month
NONE = "~"  # since: no month, the running sums only (`/metrics`); sorts after every month
_HEAD = 32
DAYS = ".cost-days.json"
FOLDER = ".cost-days"
VERSION = 2
TICK_IDS = 5000  # runs_keep is 50 by default: the costed decides `looop cost` looks up

Source = tuple[str, str, str, str, str]  # kind, worker id ("" for ticks), runner, model, source
Cells = dict[Source, list[int]]


class Stale(Exception):
    """A file the index names is gone or unreadable: the totals are rebuilt."""


class Days:
    """The folded ledger: per local day (ISO) per source [micro-USD, rows]. `days` holds the
    months in `loaded` whole; for any other month only the rows folded since its file was
    written (added to that file's counts when the month is wanted, need())."""

    def __init__(self, zone: str, folder: str = "") -> None:
        self.zone = zone
        self.folder = folder  # <data>/.cost-days
        self.files: list[list[Any]] = []  # [dev, ino, end, head hex]
        self.days: dict[str, Cells] = {}
        self.bad = 0
        self.sums: dict[tuple[str, str], list[int]] = {}  # (kind, source) -> [usd, rows]
        self.months: dict[str, str] = {}  # month -> its file's name, as the index names it
        self.loaded: set[str] = set()
        self.dirty: set[str] = set()  # months folded into since their file was written
        self.gen = 0
        self.ticks: dict[str, int] | None = None  # costed tick ids -> second; None: unread
        self.ticks_file = ""
        self.new_ticks: dict[str, int] = {}  # folded since the ticks file was written
        self.ticks_before = 0  # ids of rows up to this second were let go (TICK_IDS)
        self.exists = False

    def span(self, lo: str, hi: str | None) -> list[tuple[str, Cells]]:
        """The days from `lo` to `hi` (None: no end), of loaded months only."""
        return [
            (day, cells)
            for day, cells in self.days.items()
            if day[:7] in self.loaded and lo <= day and (hi is None or day <= hi)
        ]


def add_cell(cells: dict[Any, list[int]], key: object, usd: int, n: int) -> None:
    """[micro-USD, rows] under `key` grown by `usd` and `n`."""
    cell = cells.setdefault(key, [0, 0])
    cell[0] += usd
    cell[1] += n


def _cells(rows: Any, into: Cells) -> None:
    try:
        for row in rows:
            usd, n = row[5], row[6]
            if len(row) != 7 or type(usd) is not int or type(n) is not int:
                raise Stale
            into[tuple(row[:5])] = [usd, n]
    except (TypeError, IndexError, KeyError):
        raise Stale from None


def _ours(head: str, name: str) -> bool:
    """Whether `name` is a name this module gives a file in the folder: `head` (a month's
    `YYYY-MM.`, or `ticks.`) then only letters, digits, `.` and `-`: no path."""
    month = head[:4].isdigit() and head[4:5] == "-" and head[5:7].isdigit() and len(head) == 8
    rest = name[len(head) :]
    ok = name.startswith(head) and all(c.isascii() and (c.isalnum() or c in ".-") for c in rest)
    return ok and (month or head == "ticks.")


def load(path: str, zone: str) -> Days | None:
    """The index at `path` for `zone`; None when missing, corrupt or of another zone."""
    obj = totals.read_json(path)
    if not isinstance(obj, dict) or obj.get("zone") != zone:
        return None
    d = Days(zone, os.path.join(os.path.dirname(path), FOLDER))
    try:
        for f in obj["files"]:
            dev, ino, end, head = f
            if not (type(dev) is int and type(ino) is int and type(end) is int and end >= 0):
                return None
            d.files.append([dev, ino, end, str(head)])
        d.bad, d.ticks_before = int(obj["bad"]), int(obj["ticks_before"])
        if obj.get("v") != VERSION:
            return None
        d.gen = int(obj["gen"])
        d.months = {str(k): str(v) for k, v in obj["months"].items()}
        d.ticks_file = str(obj["ticks"])
        named = [(f"{m}.", n) for m, n in d.months.items()]
        if not all(_ours(head, n) for head, n in [*named, ("ticks.", d.ticks_file or "ticks.")]):
            return None  # a name not of the folder's own making: rebuilt, nothing unlinked
        for kind, source, usd, n in obj["sums"]:
            d.sums[(str(kind), str(source))] = [int(usd), int(n)]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return d


def need(d: Days, month: str) -> None:
    """Month `month` whole in `d.days`: its file's counts added to what was folded since.
    Stale when the index names a file that cannot be read."""
    if month in d.loaded:
        return
    name = d.months.get(month)
    if name is not None:
        obj = totals.read_json(os.path.join(d.folder, name))
        if not isinstance(obj, dict) or obj.get("month") != month:
            raise Stale
        base: dict[str, Cells] = {}
        try:
            for day, rows in obj["days"].items():
                if str(day)[:7] != month:
                    raise Stale
                _cells(rows, base.setdefault(str(day), {}))
        except (KeyError, TypeError, AttributeError):
            raise Stale from None
        for day, cells in base.items():  # add what was folded since, then keep the sum
            for src, (usd, n) in d.days.get(day, {}).items():
                add_cell(cells, src, usd, n)
            d.days[day] = cells
    d.loaded.add(month)


def need_ticks(d: Days) -> dict[str, int]:
    """The costed tick ids (newest last), the file's and those folded since, trimmed."""
    if d.ticks is None:
        d.ticks = {}
        if d.ticks_file:
            obj = totals.read_json(os.path.join(d.folder, d.ticks_file))
            if not isinstance(obj, dict) or not isinstance(obj.get("ticks"), list):
                raise Stale
            try:
                d.ticks = {str(k): int(v) for k, v in obj["ticks"]}
            except (TypeError, ValueError):
                raise Stale from None
    if d.new_ticks:
        for k, v in d.new_ticks.items():
            d.ticks.pop(k, None)  # re-inserted: the dict keeps the newest last
            d.ticks[k] = v
        d.new_ticks = {}
        d.dirty.add("ticks")
    if len(d.ticks) > TICK_IDS:
        ids = list(d.ticks.items())
        cut = len(ids) - TICK_IDS
        d.ticks_before = max([d.ticks_before, *(t for _, t in ids[:cut])])
        d.ticks = dict(ids[cut:])
    return d.ticks


def _put(path: str, body: object) -> None:
    # not fsynced: after a crash the index names what it names; a file it names that is
    # torn or missing is stale, and rebuilt from the ledger files
    store.atomic_write(path, jsonio.canonical(body) + "\n", durable=False)


def save(path: str, d: Days, sweep: bool = False) -> None:
    """Write the months and ticks changed since `d` was read, then the index that names
    them; then let the files they replace go (`sweep`: every file the index does not name,
    after a rebuild). Every month changed must be loaded (need)."""
    if not os.path.isdir(os.path.dirname(path) or "."):
        return  # a pure read never makes the data dir
    gen, tag = d.gen + 1, f"{d.gen + 1}-{os.getpid()}"
    months, gone = dict(d.months), []
    try:
        store.mkdirs(d.folder)
        for month in sorted(d.dirty - {"ticks"}):
            days = {
                k: [[*s, *c] for s, c in v.items()] for k, v in d.days.items() if k[:7] == month
            }
            name = f"{month}.{tag}.json"
            _put(os.path.join(d.folder, name), {"month": month, "days": days})
            gone.append(months.get(month))
            months[month] = name
        ticks = d.ticks_file
        if "ticks" in d.dirty and d.ticks is not None:
            ticks = f"ticks.{tag}.json"
            _put(os.path.join(d.folder, ticks), {"ticks": [[k, v] for k, v in d.ticks.items()]})
            gone.append(d.ticks_file)
        index = {
            "v": VERSION,
            "gen": gen,
            "zone": d.zone,
            "files": d.files,
            "bad": d.bad,
            "sums": [[*k, *v] for k, v in sorted(d.sums.items())],
            "months": months,
            "ticks": ticks,
            "ticks_before": d.ticks_before,
        }
        _put(path, index)
    except OSError:
        return  # read-only data dir: the next reader folds again
    d.gen, d.months, d.ticks_file, d.dirty = gen, months, ticks, set()
    keep = {*months.values(), ticks}
    _let_go(d.folder, keep, os.listdir(d.folder) if sweep else [g for g in gone if g])


def _let_go(folder: str, keep: set[str], names: list[str]) -> None:
    for name in names:
        if name not in keep and name.endswith(".json") and os.sep not in name:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


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
    add_cell(d.days.setdefault(day, {}), key, usd, 1)
    d.dirty.add(day[:7])
    add_cell(d.sums, (kind, key[4]), usd, 1)
    if kind == "tick" and wid:
        d.new_ticks.pop(wid, None)  # re-inserted: the dict keeps the newest last
        d.new_ticks[wid] = int(when)


def _fold(d: Days, fd: int, start: int, size: int, clock: Clock) -> int:
    """Fold the whole lines of [start, size) of `fd`; the offset the last one ends at."""
    buf = totals.read_at(fd, start, size)
    end = buf.rfind(b"\n") + 1
    for raw in buf[:end].split(b"\n"):
        _fold_line(d, raw, clock)
    return start + end


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
        for path in [*totals.archives(data), os.path.join(data, totals.LEDGER)]:
            try:
                fd = os.open(path, totals.FLAGS)
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
            d, before = load(path, zone), 0
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
        save(path, d, sweep=rebuilt)
        folded = 0
    if held is not None:
        held.days, held.seen, held.unsaved = d, _stat(path), folded
    return d
