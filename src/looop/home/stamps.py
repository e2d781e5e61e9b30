"""UTC stamps for ledgers and events, spelled as datetime spells them, without datetime
(~2 ms the hot verbs `tell` and `cost report` do not have)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.home.localtime import Calendar


def _split(ts: float) -> tuple[int, int]:
    """(whole seconds, microseconds) as datetime.fromtimestamp rounds them (half to even)."""
    sec = int(ts // 1)
    us = round((ts - sec) * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    return sec, us


def utc_stamp(ts: float) -> str:
    """Ledger/events form: 2026-06-21T01:15:42Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_split(ts)[0]))


def utc_stamp_ms(ts: float) -> str:
    """events.jsonl form: 2026-06-21T01:15:42.123Z."""
    sec, us = _split(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)) + f"{us // 1000:03d}Z"


def whole_second(ts: float) -> int:
    """The second datetime.fromtimestamp(ts) shows (it rounds microseconds half to even)."""
    return _split(ts)[0]


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (the civil-from-days inverse)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_z(s: str) -> float | None:
    """looop's own forms `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z`; None for anything else."""
    n = len(s)
    if n < 20 or s[-1] != "Z" or s[4] != "-" or s[7] != "-" or s[10] != "T":
        return None
    if s[13] != ":" or s[16] != ":" or not (n == 20 or (s[19] == "." and 21 < n <= 27)):
        return None
    digits = s[0:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19] + s[20:-1]
    if not (digits.isascii() and digits.isdigit()):
        return None
    y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
    h, mi, se = int(s[11:13]), int(s[14:16]), int(s[17:19])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (y >= 1 and 1 <= mo <= 12 and h < 24 and mi < 60 and se < 60):
        return None
    if not 1 <= d <= _MONTH_DAYS[mo - 1] + (mo == 2 and leap):
        return None
    us = int(s[20:-1].ljust(6, "0")) if n > 20 else 0
    # whole microseconds, divided once: the float datetime.timestamp() gives
    return ((_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1_000_000 + us) / 1_000_000


def parse_utc(stamp: str) -> float | None:
    """localtime.parse_iso_utc without datetime for the stamps looop writes; anything else is read
    by parse_iso_utc itself, so both always agree."""
    got = parse_z(stamp)
    if got is not None:
        return got
    # the readers of ledgers and beats (status among them) meet looop's own stamps alone
    return calendar().parse_iso_utc(stamp)


def calendar() -> type[Calendar]:
    """The one door to datetime and zoneinfo (home/localtime.py), for this module and
    clock.py."""
    # a contract verb and a skip beat ask for none of these
    # lazy: datetime and zoneinfo (~4 ms): a local datetime, a named zone, a foreign stamp
    from looop.home.localtime import Calendar

    return Calendar


def until_text(tm: time.struct_time, ahead: float) -> str:
    """A reset as a face says it: HH:MM (its local `tm`), with its date when over a day
    (`ahead`, seconds) away: a week said as a bare time of day reads as today."""
    hm = f"{tm.tm_hour:02d}:{tm.tm_min:02d}"
    if ahead <= 86400:
        return hm
    return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d} {hm}"
