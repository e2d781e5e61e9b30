"""Datetimes and IANA zones: the local time as an aware datetime (SystemClock.local), ISO 8601
stamps of any spelling read back (stamps.parse_utc reads looop's own without this), and a zone
by name (a schedule's, an agent CLI's usage-limit message's, the local one).

Apart from clock.py and stamps.py because `datetime` and `zoneinfo` (with sysconfig, ~4 ms)
load only in a process that asks for one of these: status, ls, the ledger's readers and a
skip beat tell the time with time.localtime. They reach it through stamps.calendar()."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_datetime(ts: float) -> datetime:
    """An aware datetime in the local zone (its fixed offset at that moment)."""
    return datetime.fromtimestamp(ts).astimezone()


def parse_iso_utc(stamp: str) -> float | None:
    """Unix seconds of an ISO 8601 stamp with a zone ('Z' or an offset); None for anything else
    (no zone, not a stamp). stamps.parse_utc reads looop's own stamps the same without it."""
    try:
        d = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if d.tzinfo is None:
        return None
    return d.timestamp()


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


class Calendar:
    """What the light readers (clock.py, stamps.py) take from here, as stamps.calendar()
    hands it out."""

    local_datetime = staticmethod(local_datetime)
    parse_iso_utc = staticmethod(parse_iso_utc)
    load_zone = staticmethod(load_zone)
