"""A process's line in /proc/PID/stat, read once for every room that asks of a process's state,
parent, group or start time."""

from __future__ import annotations


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields after the process's name (the state first, then the parent, the group, …),
    or None when it is gone or /proc cannot be read. The name sits in brackets and may hold
    anything, brackets and spaces included, so the fields start after its last `)`."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    close = raw.rfind(b")")
    return raw[close + 2 :].split() if close >= 0 else None
