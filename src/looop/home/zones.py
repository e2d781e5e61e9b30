"""IANA time zones: the local one (SystemClock.zone), one named by a schedule or by an agent
CLI's usage-limit message, and a zone's name.

Apart from clock.py because `zoneinfo` (with sysconfig, ~2.5 ms) loads only in a process
that asks for a zone: status, ls and a skip beat never do (localtime.py has the datetimes)."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def load_zone(name: str) -> tzinfo:
    """An IANA zone by name; ValueError with the reason for anything else."""
    key = name.strip()
    if key.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone '{name}': use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC"
        ) from None


def zone_name(zone: tzinfo) -> str | None:
    """The IANA key of a zone, if it has one (fixed offsets have none)."""
    if zone is UTC:
        return "UTC"
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else None
