"""One durable line in events.jsonl: the one writer, the Emitter's record and a contract
verb's alike."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from looop.home import jsonio
from looop.home.stamps import utc_stamp_ms

if TYPE_CHECKING:
    from typing import Any

    from looop.home.store import AnyPath

MAX_BYTES = 5 * 1024 * 1024  # events.jsonl rotates to events.jsonl.1 past this


def record_line(event: str, fields: dict[str, Any], now: float) -> str:
    obj = {k: v for k, v in fields.items() if k not in ("event", "ts")}
    obj.update(event=event, ts=utc_stamp_ms(now))
    return jsonio.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def append_record(
    path: AnyPath, event: str, fields: dict[str, Any], now: float, max_bytes: int = MAX_BYTES
) -> None:
    """Append one record; never raises (events are best effort, the verb's work is done)."""
    line = record_line(event, fields, now)
    try:
        _rotate_if_big(path, max_bytes)
        # a FIFO never hangs us; a symlink a box put there is never written through
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            os.write(fd, (line + "\n").encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def _rotate_if_big(path: AnyPath, max_bytes: int) -> None:
    if max_bytes <= 0:
        return
    try:
        if os.stat(path).st_size < max_bytes:
            return
    except FileNotFoundError:
        return
    os.replace(path, os.fspath(path) + ".1")
