"""The ledger's rotation: `cost.jsonl` holds the current month's rows; once a row of a new
month (UTC) is due, or the file passes ROTATE_BYTES, the writer moves it whole to
`cost/YYYY-MM.jsonl` (the month of its first row; `-2`, `-3`, … when that name is taken), where
`grep` still finds every row. Moved by rename under the spend lock, so two writers never move
two files to one name; a row a writer was appending as it moved lands in the archive, where
the day totals (days.py) still count it: they follow each file by its inode, not its name.

Light (no json, datetime or pathlib): a worker's `looop cost report` is a hot verb."""

from __future__ import annotations

import os
import stat

from looop.home import store
from looop.home.where import LOCKS

LEDGER = "cost.jsonl"
ARCHIVE = "cost"  # the folder of past months, beside the ledger
# Below store.SINCE_MAX: the running totals can always fold the whole current file.
ROTATE_BYTES = 12 << 20
FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW  # a ledger file, to read
_HEAD = 512


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
    # lazy: the lock (fcntl) only when a month's file moves, never on a `cost report`'s way
    from looop.home import locks

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
