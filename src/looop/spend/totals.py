"""Running totals of the cost ledger, so today's spend costs the same at 10 rows as at 100,000.

`<data>/.cost-totals.json` holds, for each UTC quarter hour of the last two days, the micro-USD
spent per source (kind, worker id, runner; ticks as one source), and which ledger bytes it
covers: the ledger's identity (st_dev, st_ino) and the offset its last folded line ends at.
Writers of rows fold what the ledger holds past that offset and write the file whole (temp +
rename), every few KB of rows. No lock: each file is true for the bytes it names, so two
writers racing only leave the later reader a few lines to fold itself. A reader trusts it
only for the same ledger, no shorter than the offset; the lines past it (a writer that crashed
between its row and the totals, or one that never writes them) it folds in memory. Missing,
corrupt, stale or a zone whose days do not start on a quarter hour: today() says None and
its caller (any reader, budget or none) rebuilds the file once with refresh() and writes it,
scanning the ledger only where that cannot help. When rotate_if_due moved the ledger to
`cost/YYYY-MM.jsonl`, both follow the old file there by its identity and finish its tail.

Quarter hours, not days: a local day is a run of whole quarter hours in every zone in use,
so one file answers any zone, DST days included.

The ledger's rotation (rotate_if_due) is here too: `cost.jsonl` holds the current month's rows;
once a row of a new month (UTC) is due, or the file passes ROTATE_BYTES, the writer moves it whole
to `cost/YYYY-MM.jsonl` (the month of its first row; `-2`, `-3`, … when that name is taken), where
`grep` still finds every row. Moved by rename under the spend lock, so two writers never move two
files to one name; a row a writer was appending as it moved lands in the archive, where the day
totals (days.py) still count it: they follow each file by its inode, not its name.

Light (no json, datetime or pathlib): a worker's `looop cost report` writes through it."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.home import jsonio, locks, stamps, store
from looop.home.where import LOCKS
from looop.spend import sane_usd

if TYPE_CHECKING:
    from typing import Any

    from looop.home.clock import Clock

TOTALS = ".cost-totals.json"
LEDGER = "cost.jsonl"
ARCHIVE = "cost"  # the folder of past months, beside the ledger
# Below store.SINCE_MAX: the running totals can always fold the whole current file.
ROTATE_BYTES = 12 << 20
FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW  # a ledger file, to read
_HEAD = 512
VERSION = 2  # 2: a worker's own reports kept apart (SAID), bounded
# A worker's own word (a `cost report` through the door: its row keeps the request key) counts
# whole against its own --budget, but toward the fleet's daily budget at most SAID_REPORT_USD
# of one report and SAID_DAY_USD of one worker's reports in a local day: one worker's claim
# cannot freeze the fleet.
SAID = "said\t"  # its source: "said\t<worker id>"
SAID_REPORT_USD = 1.0
SAID_DAY_USD = 2.0
QUARTER = 900
KEEP_S = 2 * 86400 + 4 * 3600  # behind the writer's now: yesterday and today in any zone
DAY_REACH_S = 28 * 3600  # today's quarters all start within this of now (a 25 h DST day)
MAX_TAIL = 256 << 10  # a reader folds at most this much past the offset; more: it scans
# Writers fold and rewrite the file once the ledger grows past each multiple of this (about
# 40 rows), not on every row: a rename costs ms on some filesystems and `cost report` is a
# hot verb; a reader folds the few rows since in memory (~10 us each, on every `status`).
FLUSH_BYTES = 4 << 10


def micros(amount: float) -> int:
    """An amount in whole micro-USD: what the ledger keeps (rows are rounded to 6 places), and
    integers add up exactly, in any order."""
    return round(amount * 1_000_000)


def source(row: dict[str, Any]) -> str:
    """kind, worker id and runner, tab-joined; a tick's id is its run's, so ticks are one. A
    worker's own report (said through the door: it keeps the request key): SAID + its id."""
    kind, rid, runner = row.get("kind"), row.get("id"), row.get("runner")
    if isinstance(row.get("key"), str) and isinstance(rid, str):
        return SAID + rid
    kind = kind if isinstance(kind, str) else ""
    rid = rid if isinstance(rid, str) and kind != "tick" else ""
    runner = runner if isinstance(runner, str) else ""
    return f"{kind}\t{rid}\t{runner}"


def parse_row(line: str) -> tuple[dict[str, Any], float, float] | None:
    """A ledger line's row, its USD and its time; None for a corrupt line (every reader of the
    ledger takes it as no spend): not an object with a sane `cost_usd` and an RFC 3339 `ts`."""
    try:
        obj = jsonio.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    amount = sane_usd(obj.get("cost_usd"))
    ts = obj.get("ts")
    when = stamps.parse_utc(ts) if isinstance(ts, str) else None
    if amount is None or when is None:
        return None
    return obj, amount, when


def fold(buf: bytes, quarters: dict[str, dict[str, int]], since: int) -> int:
    """Add the whole lines of `buf` to `quarters` (rows stamped before `since` left out);
    the bytes taken, up to the end of the last whole line (a line being written stays)."""
    end = buf.rfind(b"\n") + 1
    for raw in buf[:end].split(b"\n"):
        row = parse_row(raw.decode("utf-8", "replace")) if raw.strip() else None
        if row is None:
            continue
        start = int(stamps.whole_second(row[2]) // QUARTER) * QUARTER
        if start >= since:
            add(quarters.setdefault(str(start), {}), row[0], row[1])
    return end


def add(sources: dict[str, int], row: dict[str, Any], amount: float) -> None:
    """A row's micro-USD toward the fleet's day added to its source's (one worker's own report
    at most SAID_REPORT_USD)."""
    src = source(row)
    if src.startswith(SAID):
        amount = min(amount, SAID_REPORT_USD)
    sources[src] = sources.get(src, 0) + micros(amount)


def counted(sources: dict[str, int]) -> tuple[int, int]:
    """Micro-USD toward the fleet's daily budget from a day's sums by source, and the part of
    it workers said themselves (each worker's at most SAID_DAY_USD)."""
    said = sum(min(n, micros(SAID_DAY_USD)) for s, n in sources.items() if s.startswith(SAID))
    return said + sum(n for s, n in sources.items() if not s.startswith(SAID)), said


def read_json(path: str) -> Any:
    """A cache file's JSON (the totals, the day totals); None when missing or unreadable."""
    try:
        return jsonio.loads(store.read_text(path) or "null")
    except (OSError, ValueError, RecursionError):
        return None


def _load(path: str) -> dict[str, Any] | None:
    """The totals file when it has its shape, else None."""
    obj = read_json(path)
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        return None
    ledger, end, quarters = obj.get("ledger"), obj.get("end"), obj.get("q")
    if not (isinstance(ledger, list) and len(ledger) == 2 and all(type(x) is int for x in ledger)):
        return None
    if type(end) is not int or end < 0 or type(obj.get("since")) is not int:
        return None
    ok = isinstance(quarters, dict) and all(
        k.isdigit() and isinstance(b, dict) and all(type(v) is int for v in b.values())
        for k, b in quarters.items()
    )
    return obj if ok else None


def read_at(fd: int, start: int, size: int) -> bytes:
    """The bytes [start, size) of `fd` (fewer when it shrank meanwhile)."""
    parts: list[bytes] = []
    while start < size:
        got = os.pread(fd, min(size - start, 1 << 20), start)
        if not got:
            break
        parts.append(got)
        start += len(got)
    return b"".join(parts)


def _moved(data: str, t: dict[str, Any], limit: int) -> bytes | None:
    """The bytes past the totals' offset in the file they cover, now archived (py moved
    the ledger since they were written); None when it is not there or holds over `limit`."""
    path = find_inode(data, t["ledger"])
    if path is None:
        return None
    try:
        fd = os.open(path, FLAGS)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if not 0 <= size - t["end"] <= limit:
            return None
        return read_at(fd, t["end"], size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _archived_since(data: str, since: int) -> bytes:
    """The newest archive's rows back to `since`: a rebuild just after a move (py)
    still counts today's rows that left with last month's file."""
    olds = archives(data)
    text = store.read_since(olds[-1], stamps.utc_stamp(since)) if olds else None
    return store.encode(text or "")


def after_append(data: str, wrote: int, now: float, every: int = FLUSH_BYTES) -> None:
    """A writer's part after appending `wrote` bytes: refresh the totals when the ledger
    crossed a multiple of `every` bytes or there are none yet."""
    try:
        size = os.stat(os.path.join(data, LEDGER)).st_size
    except OSError:
        return
    if (size - wrote) // every != size // every or not os.path.exists(os.path.join(data, TOTALS)):
        refresh(data, now)


def refresh(data: str, now: float) -> None:
    """Fold the rows appended since the totals were written (all of the ledger's recent rows
    when they are missing or not this ledger's) and write them whole. A writer calls it after
    its row; any failure leaves the file as it was (readers fold or scan, as they must)."""
    path = os.path.join(data, TOTALS)
    try:
        fd = os.open(os.path.join(data, LEDGER), FLAGS)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        ident = [st.st_dev, st.st_ino]
        since = int((now - KEEP_S) // QUARTER) * QUARTER
        old = _load(path)
        moved = None if old is None or old["ledger"] == ident else _moved(data, old, 1 << 62)
        if moved is not None and old is not None:  # the ledger was rotated: finish the old one
            quarters, start = old["q"], 0
            since = max(since, old["since"])
            fold(moved, quarters, since)
        elif old is None or old["ledger"] != ident or old["end"] > st.st_size:
            quarters = {}
            start = 0
            fold(_archived_since(data, since), quarters, since)
        else:
            quarters, start = old["q"], old["end"]
            since = max(since, old["since"])  # rows it left out stay out
        if st.st_size - start > store.SINCE_MAX:
            return  # a box can append: past the bound the readers scan the tail (bounded)
        end = start + fold(read_at(fd, start, st.st_size), quarters, since)
    except OSError:
        return
    finally:
        os.close(fd)
    kept = {k: v for k, v in quarters.items() if int(k) >= since}
    body = {"v": VERSION, "ledger": ident, "end": end, "since": since, "q": kept}
    try:
        # not fsynced: after a crash it is rebuilt or caught up from the ledger
        store.atomic_write(path, jsonio.canonical(body) + "\n", durable=False)
    except OSError:
        pass


def today(data: str, clock: Clock) -> dict[str, int] | None:
    """Today's micro-USD per source (local day, as the ledger's readers count it), from the
    totals and the ledger lines past them; None where the totals cannot say (the caller
    scans the ledger)."""
    t = _load(os.path.join(data, TOTALS))
    if t is None:
        return None
    try:
        fd = os.open(os.path.join(data, LEDGER), FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        quarters: dict[str, dict[str, int]] = t["q"]
        start = t["end"]
        if [st.st_dev, st.st_ino] != t["ledger"]:
            moved = _moved(data, t, MAX_TAIL)  # rotated since: the old file's tail, then ours
            if moved is None:
                return None
            fold(moved, quarters, t["since"])
            start = 0
        if start > st.st_size or st.st_size - start > MAX_TAIL:
            return None
        fold(read_at(fd, start, st.st_size), quarters, t["since"])
    except OSError:
        return None
    finally:
        os.close(fd)
    now = clock.now()
    if t["since"] > now - DAY_REACH_S:
        return None  # the file was written by a clock far ahead: it may lack today's start
    date = clock.local_tm(now)[:3]
    lo, hi = now - DAY_REACH_S, now + DAY_REACH_S
    out: dict[str, int] = {}
    for k, bucket in quarters.items():
        start = int(k)
        if not lo <= start <= hi or clock.local_tm(start)[:3] != date:
            continue
        if clock.local_tm(start + QUARTER - 1)[:3] != date:
            return None  # a zone whose day starts inside a quarter hour
        for src, n in bucket.items():
            out[src] = out.get(src, 0) + n
    return out


# -- the ledger's rotation ----------------------------------------------------------------------


def _first_month(fd: int) -> str | None:
    """`YYYY-MM` of the file's first row, None when it has none readable."""
    head = os.pread(fd, _HEAD, 0)
    line = head.split(b"\n", 1)[0]
    at = line.find(b'"ts":"')
    month = line[at + 6 : at + 13] if at >= 0 else b""
    if len(month) == 7 and month[:4].isdigit() and month[4:5] == b"-" and month[5:].isdigit():
        return month.decode()
    return None


def _due(path: str, month: str) -> str | None:
    """The archive month when the ledger at `path` should move before a row of `month` is
    appended; None when it stays."""
    try:
        fd = os.open(path, FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        first = _first_month(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if first is not None and first < month:
        return first
    if st.st_size >= ROTATE_BYTES:
        return first or month
    return None


def rotate_if_due(data: str, stamp: str) -> str | None:
    """Move the ledger to its archive when the row stamped `stamp` (looop's UTC spelling)
    starts a new month or the file is full; the archive's path, or None when it stayed."""
    path = os.path.join(data, LEDGER)
    if _due(path, stamp[:7]) is None:
        return None  # the common case: one open and a 512-byte read, no lock
    try:
        with locks.dir_lock(os.path.join(data, LOCKS, "spend")):
            month = _due(path, stamp[:7])  # again: another writer may have moved it
            if month is None:
                return None
            folder = os.path.join(data, ARCHIVE)
            store.mkdirs(folder)
            dest = os.path.join(folder, f"{month}.jsonl")
            n = 1
            while os.path.lexists(dest):
                n += 1
                dest = os.path.join(folder, f"{month}-{n}.jsonl")
            os.rename(path, dest)
            return dest
    except OSError:
        return None  # the row goes to the ledger as it is; the next writer tries again


def archives(data: str) -> list[str]:
    """The archived ledgers' paths, oldest first (their names sort as their months)."""
    folder = os.path.join(data, ARCHIVE)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names, key=_order) if n.endswith(".jsonl")]


def _order(name: str) -> tuple[str, int]:
    """`2025-01.jsonl` before `2025-01-2.jsonl` before `2025-02.jsonl`."""
    stem = name[: -len(".jsonl")]
    n = stem[8:]
    return (stem[:7], int(n) if n.isdigit() else 1)


def find_inode(data: str, ident: list[int]) -> str | None:
    """The archive that is the file (st_dev, st_ino) `ident`: where the running totals'
    ledger went when it was moved."""
    for path in reversed(archives(data)):
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if [st.st_dev, st.st_ino] == ident and stat.S_ISREG(st.st_mode):
            return path
    return None


def recent_text(data: str, since: str) -> str | None:
    """The ledger's rows back to about `since` (store.read_since), the newest archive's tail
    first when the ledger itself starts later (it was moved since); None when neither
    exists. OSError as store.read_since raises it."""
    text = store.read_since(os.path.join(data, LEDGER), since)
    head = (text or "").split("\n", 1)[0]
    at = head.find('"ts":"')
    if text and at >= 0 and head[at + 6 : at + 26] <= since:
        return text  # its first row is older: the archive holds nothing newer
    olds = archives(data)
    if not olds:
        return text
    older = store.read_since(olds[-1], since)
    if older is None:
        return text
    return older + (text or "") if older.endswith("\n") or not text else older + "\n" + text
