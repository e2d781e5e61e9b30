"""Injectable time: no module reads the clock on its own."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from looop.home import stamps

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

# datetime and zoneinfo load only with localtime.py, when a clock is first asked for a datetime
# or a zone: status formats local time with time.localtime (local_tm) and a skip beat asks for
# no zone.


class Clock:
    """What every room asks for the time (plain base class: cheap to import)."""

    def now(self) -> float:
        """Unix seconds."""
        raise NotImplementedError

    def monotonic(self) -> float:
        raise NotImplementedError

    def boottime(self) -> float:
        """Seconds since boot, suspend included, the same in every process (CLOCK_BOOTTIME):
        for a "how long since" one process writes down and another judges."""
        return self.monotonic()

    def local(self, ts: float | None = None) -> datetime:
        """An aware datetime in the local zone (ts defaults to now)."""
        raise NotImplementedError

    def zone(self) -> tzinfo:
        """The local zone with its DST rules (a named zone when the system has one)."""
        raise NotImplementedError

    def named_zone(self, name: str) -> tzinfo:
        """An IANA zone by name (ValueError says why not): zoneinfo loads when one is named."""
        return stamps.calendar().load_zone(name)

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

    def boottime(self) -> float:
        return boottime()

    def local(self, ts: float | None = None) -> datetime:
        return stamps.calendar().local_datetime(self.now() if ts is None else ts)

    def local_tm(self, ts: float) -> time.struct_time:
        # the second datetime.fromtimestamp would show (it rounds microseconds half to even)
        return time.localtime(stamps.whole_second(ts))

    def offset_stamp_at(self, ts: float) -> str:
        tm = self.local_tm(ts)
        return time.strftime("%Y-%m-%d %H:%M ", tm) + offset_text(tm.tm_gmtoff)

    def zone(self) -> tzinfo:
        """TZ if it names a zone, else /etc/localtime's zone, else today's fixed local offset."""
        if self._zone is None:
            self._zone = self._system_zone()
        return self._zone

    def _system_zone(self) -> tzinfo:
        tz = [self.tz_name.lstrip(":")] if self.tz_name else []
        for name in [*tz, os.path.realpath("/etc/localtime")]:
            try:  # named_zone: the clock's one door to zoneinfo (a path's is no name: next)
                return self.named_zone(name.split("zoneinfo/", 1)[-1])
            except ValueError:
                continue
        local = self.local().tzinfo  # today's fixed offset: an aware datetime has one
        assert local is not None
        return local


def boottime() -> float:
    """CLOCK_BOOTTIME where there is one (Linux), else the monotonic clock."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    if clock_id is None:
        return time.monotonic()
    return time.clock_gettime(clock_id)


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


def now_of(clock: Clock | None) -> float:
    """Unix seconds from the injected clock, else the system's."""
    return clock.now() if clock is not None else time.time()
