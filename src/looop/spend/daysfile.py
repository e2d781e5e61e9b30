"""Where the day totals (days.py) are kept: split by month, so a window reads the months it
covers, not every day the home ever spent on.

`<data>/.cost-days.json`, the index: the zone, which bytes of which ledger files are folded,
the corrupt lines seen, each (kind, source)'s running sum (what `/metrics` shows), and the
name of each month's file and of the costed tick ids' file, both under `<data>/.cost-days/`.
A month's file holds its local days' [micro-USD, rows] per source. Files are never rewritten
in place: a save writes the months it changed under new names (`YYYY-MM.<gen>-<pid>.json`,
unique: the index's generation and the writer), then the index by rename, then lets the
replaced files go. A reader sees an old index and its files or the new one and its files; a
month file the index names that is missing or unreadable is stale (days.py rebuilds).

Version 1 kept everything in the one file: read as another version's, it is rebuilt."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.home import jsonio, store

if TYPE_CHECKING:
    from typing import Any

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


def _read(path: str) -> Any:
    try:
        return jsonio.loads(store.read_text(path) or "null")
    except (OSError, ValueError, RecursionError):
        return None


def load(path: str, zone: str) -> Days | None:
    """The index at `path` for `zone`; None when missing, corrupt or of another zone."""
    obj = _read(path)
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
        obj = _read(os.path.join(d.folder, name))
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
                cell = cells.setdefault(src, [0, 0])
                cell[0] += usd
                cell[1] += n
            d.days[day] = cells
    d.loaded.add(month)


def need_ticks(d: Days) -> dict[str, int]:
    """The costed tick ids (newest last), the file's and those folded since, trimmed."""
    if d.ticks is None:
        d.ticks = {}
        if d.ticks_file:
            obj = _read(os.path.join(d.folder, d.ticks_file))
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
