"""Injectable time: no module reads the clock on its own."""

from __future__ import annotations

import os
import time

from looop.hot import stamps

TYPE_CHECKING = False  # not `from typing`: `looop status` imports this on its fast path

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime, tzinfo

# datetime loads inside the methods that return one: status formats local time with
# time.localtime (local_tm) and never needs it.


class Clock:
    """What every room asks for the time (plain base class: cheap to import)."""

    def now(self) -> float:
        """Unix seconds."""
        raise NotImplementedError

    def monotonic(self) -> float:
        raise NotImplementedError

    def local(self, ts: float | None = None) -> datetime:
        """An aware datetime in the local zone (ts defaults to now)."""
        raise NotImplementedError

    def zone(self) -> tzinfo:
        """The local zone with its DST rules (a named zone when the system has one)."""
        raise NotImplementedError

    def local_tm(self, ts: float) -> time.struct_time:
        """`local(ts)` as a struct_time (its date and wall-clock fields), for time.strftime."""
        return self.local(ts).timetuple()

    def offset_stamp_at(self, ts: float) -> str:
        """offset_stamp(self.local(ts)): 2026-06-21 10:00 +09:00."""
        return offset_stamp(self.local(ts))


class SystemClock(Clock):
    def __init__(self, tz_name: str | None = None) -> None:
        self.tz_name = tz_name  # the TZ the process was given, if any
        self._zone: tzinfo | None = None

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def local(self, ts: float | None = None) -> datetime:
        from datetime import datetime  # lazy: hot path: see local_tm

        return datetime.fromtimestamp(self.now() if ts is None else ts).astimezone()

    def local_tm(self, ts: float) -> time.struct_time:
        # the second datetime.fromtimestamp would show (it rounds microseconds half to even)
        return time.localtime(stamps.whole_second(ts))

    def offset_stamp_at(self, ts: float) -> str:
        tm = self.local_tm(ts)
        return time.strftime("%Y-%m-%d %H:%M ", tm) + offset_text(tm.tm_gmtoff)

    def zone(self) -> tzinfo:
        if self._zone is None:
            self._zone = system_zone(self.tz_name)
        return self._zone


def utc_stamp(ts: float) -> str:
    """Ledger/events form: 2026-06-21T01:15:42Z."""
    return stamps.utc_stamp(ts)


def utc_stamp_ms(ts: float) -> str:
    return stamps.utc_stamp_ms(ts)


def offset_text(seconds: int) -> str:
    """A UTC offset as offset_stamp shows it: `%z` (+0900, or +055328 with seconds) with a
    colon after the hours."""
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f"{s:02d}" if s else "")


def offset_stamp(d: datetime) -> str:
    """Prompt form: 2026-06-21 10:00 +09:00."""
    off = d.strftime("%z")
    return d.strftime("%Y-%m-%d %H:%M ") + (off[:3] + ":" + off[3:] if off else "+00:00")


def parse_utc(stamp: str) -> float | None:
    return stamps.parse_iso_utc(stamp)


def load_zone(name: str) -> tzinfo:
    """An IANA zone by name; ValueError with the reason for anything else."""
    from datetime import UTC  # lazy: hot path: status reads the clock without datetime
    from zoneinfo import (  # lazy: hot path: only a named zone needs it
        ZoneInfo,
        ZoneInfoNotFoundError,
    )

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
    from datetime import UTC  # lazy: hot path: status reads the clock without datetime

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
    from datetime import UTC, datetime  # lazy: hot path: status reads the clock without datetime

    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


def clock_for(env: Mapping[str, str], clock: Clock | None) -> Clock:
    """The injected clock, else the system's in the zone TZ names."""
    return clock if clock is not None else SystemClock(env.get("TZ"))


def now_of(clock: Clock | None) -> float:
    """Unix seconds from the injected clock, else the system's."""
    return clock.now() if clock is not None else time.time()
