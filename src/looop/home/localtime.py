"""Datetimes: the local time as an aware datetime (SystemClock.local), and ISO 8601 stamps of
any spelling read back (stamps.parse_utc reads looop's own without this).

Apart from clock.py and stamps.py because `datetime` loads only in a process that asks for a
datetime: status, ls and the ledger's readers tell the time with time.localtime."""

from __future__ import annotations

from datetime import datetime


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
