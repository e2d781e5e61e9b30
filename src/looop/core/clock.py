"""Injectable time: no module reads the clock on its own."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo


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


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def local(self, ts: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.now() if ts is None else ts).astimezone()


class FixedClock(Clock):
    """A clock for tests: wall time moves only when told to; monotonic time also runs for
    real, so deadlines on real processes still expire."""

    def __init__(self, t: float = 1_750_000_000.0, tz: tzinfo = UTC, mono: float = 0.0) -> None:
        self.t = t
        self.tz = tz
        self.mono = mono

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return time.monotonic() + self.mono

    def local(self, ts: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.t if ts is None else ts, tz=self.tz)

    def advance(self, secs: float) -> None:
        self.t += secs
        self.mono += secs


def utc_stamp(ts: float) -> str:
    """Ledger/events form: 2026-06-21T01:15:42Z."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_stamp_ms(ts: float) -> str:
    d = datetime.fromtimestamp(ts, tz=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def offset_stamp(d: datetime) -> str:
    """Prompt form: 2026-06-21 10:00 +09:00."""
    off = d.strftime("%z")
    return d.strftime("%Y-%m-%d %H:%M ") + (off[:3] + ":" + off[3:] if off else "+00:00")


def parse_utc(stamp: str) -> float | None:
    try:
        d = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if d.tzinfo is None:
        return None
    return d.timestamp()
