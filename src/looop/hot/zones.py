"""The calendar half of the clock: datetimes, IANA zones and ISO stamps of any spelling.

Apart from clock.py and stamps.py so that `datetime` and `zoneinfo` load only in a process
that asks for a datetime or a zone: `status`, `ls` and the ledger's readers tell the time
with time.localtime and read looop's own stamps without them."""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Calendar:
    """SystemClock's datetimes and zone (clock.py): the local zone as the process was given
    it (TZ, else /etc/localtime), found once."""

    __slots__ = ("_zone", "tz_name")

    def __init__(self, tz_name: str | None) -> None:
        self.tz_name = tz_name
        self._zone: tzinfo | None = None

    def local(self, ts: float) -> datetime:
        """An aware datetime in the local zone."""
        return datetime.fromtimestamp(ts).astimezone()

    def zone(self) -> tzinfo:
        if self._zone is None:
            self._zone = system_zone(self.tz_name)
        return self._zone


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


def system_zone(tz_name: str | None) -> tzinfo:
    """TZ if it names a zone, else /etc/localtime's zone, else today's fixed local offset."""
    candidates = []
    if tz_name:
        candidates.append(tz_name.lstrip(":"))
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if "zoneinfo/" in name:
            name = name.split("zoneinfo/", 1)[1]
        try:
            return load_zone(name)
        except ValueError:
            continue
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


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
