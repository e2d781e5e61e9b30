"""The tests' clock: wall time moves only when a test says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo

from looop.home.clock import Clock


class FixedClock(Clock):
    """Wall time stands still until `advance`; monotonic time also runs for real, so deadlines
    on real processes still expire."""

    def __init__(
        self, t: float = 1_750_000_000.0, tz: tzinfo | None = None, mono: float = 0.0
    ) -> None:
        self.t = t
        self.tz = UTC if tz is None else tz
        self.mono = mono

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return time.monotonic() + self.mono

    def local(self, ts: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.t if ts is None else ts, tz=self.tz)

    def zone(self) -> tzinfo:
        return self.tz

    def advance(self, secs: float) -> None:
        self.t += secs
        self.mono += secs


class StillClock(FixedClock):
    """A FixedClock whose monotonic clock stands still too: two runs compared byte for byte
    see the same quiet of a live worker (home/lastoutput.py)."""

    def monotonic(self) -> float:
        return self.mono
