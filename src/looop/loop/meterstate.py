"""Writing the worker meter's state (spend/spent.py reads it): two slots, each written in
place, the older one each time, with a header (sequence, length, CRC-32) that vouches for it.
The beat's side alone: a reader checks the CRC only when a slot is there."""

from __future__ import annotations

import errno
import os
import stat
import zlib
from typing import Any

from looop.home import jsonio, store
from looop.spend.spent import MAGIC, STATES


def write_state(data: str, state: dict[str, Any]) -> None:
    """The next write of the state, into the slot the last one did not use (not fsynced: a
    state lost in a crash is rebuilt against the ledger)."""
    seq = int(state.get("seq", 0)) + 1
    state["seq"] = seq
    body = jsonio.canonical(state).encode("utf-8") + b"\n"
    raw = b"%s %d %d %d\n" % (MAGIC, seq, len(body), zlib.crc32(body)) + body
    path = os.path.join(data, STATES[seq % 2])
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise
        store.remove(path)  # a symlink or FIFO in its place: ours to replace
        fd = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        view = memoryview(raw)
        off = 0
        while off < len(raw):
            off += os.pwrite(fd, view[off:], off)
        os.ftruncate(fd, len(raw))
    finally:
        os.close(fd)
