"""Provider usage limits: find the reset time in what an agent CLI printed when its account
hit a usage window, so looop waits for the reset instead of retrying blindly.

The messages, as the CLIs print them (their wording varies by version and plan):
  one     `Claude AI usage limit reached|1760000400` (unix seconds, the print-mode form),
          `Claude usage limit reached. Your limit will reset at 9am (America/Chicago).`,
          `You've hit your 5-hour limit · resets 4:36pm (UTC)` (2.1.330, proven in
          tests/realcli/test_usage_limit.py)
  another `You’ve hit your usage limit. … or try again at 8:19 PM.` (today, local time;
          0.169.0 proven the same way),
          `… try again at Jul 5th, 2026 8:19 PM.`, `… try again in 2 days 17 hours 14 minutes.`
  either, as JSON: `"resets_at": 1775317531` or `"resets_in_seconds": 602705`.
A clock time without a date is the next such time (today, else tomorrow); a clock time is
said to the minute, so a minute is added (never wake before the reset). A reset in the
past or more than MAX_AHEAD_S away is not believed: that failure takes the normal backoff.

A worker's own output tail is read here too (said_until): `limited until HH:MM` in `ls` and
the beat's fleet rows (views/needsinput.limited_until asks only for a tail that names a limit)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from looop.home.stamps import until_text
from looop.home.textsafe import screen_text

if TYPE_CHECKING:
    from looop.home.clock import Clock

MAX_AHEAD_S = 8 * 86400  # the longest window the CLIs report is a week
MINUTE = 60  # a clock time is said to the minute: wait out the whole minute
SCAN_CHARS = 16384  # only the end of a long output is read: the limit is the last word

_Q = "['\u2019]"  # straight or typographic apostrophe
# Patterns as text, compiled on first use (re's cache): `ls` imports this module for a screen
# that rarely says any of them.
_HIT = (
    rf"(?i)usage limit reached|you{_Q}ve (?:hit|reached) your (?:[\w-]+ )?limit"
    r"|usage_limit_reached|rate_limit_reached"
)
_PIPE_EPOCH = r"(?i)usage limit reached\|(\d{9,13})"
_JSON_AT = r'"(?:resets?_at|resetsAt)"\s*:\s*"?(\d{9,13})'
_JSON_IN = r'"resets?_in_seconds"\s*:\s*(\d{1,9})'
_IN = (
    r"(?i)try again in ((?:\d+\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)"
    r"[\s,]*(?:and\s+)?)+)"
)
_UNIT = r"(?i)(\d+)\s*(d|h|m|s)"
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# `reset at 9am`, `resets 1:30am`, `try again at Jul 5th, 2026 8:19 PM`, `resets Nov 24, 3pm`
_AT = (
    r"(?i)(?:resets?(?: at)?|try again at)\s+"
    r"(?:(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s*"
    r"(?:(?P<year>\d{4}),?\s*)?(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<min>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"(?:\s*\((?P<tz>[A-Za-z0-9_+\-/]+)\))?"
)


class Limit:
    """A usage window's reset (unix seconds) and the line that said so (one line, clipped).
    A plain class: `looop ls` reads a worker's screen through this module."""

    __slots__ = ("reset", "said", "said_at")

    def __init__(self, reset: float, said: str, said_at: float | None = None) -> None:
        self.reset = reset
        self.said = said
        self.said_at = reset if said_at is None else said_at  # as said, without our minute


def _line(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = text[start : end if end >= 0 else len(text)]
    return " ".join(line.split())[:300]


def _epoch(digits: str) -> float:
    n = int(digits)
    return n / 1000.0 if n > 10**11 else float(n)  # milliseconds from some senders


def _clock_time(m: re.Match[str], now: float, clock: Clock) -> float | None:
    zone = clock.zone()
    if m.group("tz"):
        try:
            zone = clock.named_zone(m.group("tz"))
        except ValueError:
            pass
    hour, minute = int(m.group("hour")), int(m.group("min") or 0)
    ampm = (m.group("ampm") or "").lower().replace(".", "")
    if (ampm and not 1 <= hour <= 12) or hour > 23 or minute > 59:
        return None
    if ampm == "pm" and hour != 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    today = datetime.fromtimestamp(now, tz=zone)
    if m.group("mon"):
        mon = m.group("mon").lower()[:3]
        if mon not in _MONTHS:
            return None
        year = int(m.group("year") or today.year)
        try:
            when = datetime(year, _MONTHS.index(mon) + 1, int(m.group("day")), hour, minute)
        except ValueError:
            return None
        ts = when.replace(tzinfo=zone).timestamp()
        if not m.group("year") and ts < now - 86400:  # `Jan 2` said on Dec 30
            ts = when.replace(year=year + 1, tzinfo=zone).timestamp()
        return ts + MINUTE
    when = today.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if when.timestamp() + MINUTE <= now:
        when = (when.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return when.timestamp() + MINUTE


def find_limit(text: str, clock: Clock) -> Limit | None:
    """The last usage-limit message in `text` with a reset time looop believes, else None."""
    text = text[-SCAN_CHARS:]
    hits = list(re.finditer(_HIT, text))
    if not hits:
        return None
    now = clock.now()
    for hit in reversed(hits):
        reset, to_minute = _reset_after(text, hit.start(), now, clock)
        if reset is not None and now < reset <= now + MAX_AHEAD_S:
            said_at = reset - MINUTE if to_minute else reset
            return Limit(reset, _line(text, hit.start()), said_at)
    return None


def _reset_after(text: str, at: int, now: float, clock: Clock) -> tuple[float | None, bool]:
    """The reset time said at or after position `at` (the same message, a few lines on), and
    whether it was said as a clock time (to the minute) rather than in seconds."""
    tail = text[max(0, at - 40) : at + 600]
    for rx in (_PIPE_EPOCH, _JSON_AT, _JSON_IN):
        if m := re.search(rx, tail):
            return (now + int(m.group(1)) if rx == _JSON_IN else _epoch(m.group(1))), False
    if m := re.search(_IN, tail):
        secs = sum(int(n) * _SECONDS[unit.lower()] for n, unit in re.findall(_UNIT, m.group(1)))
        return (now + secs if secs else None), False
    if m := re.search(_AT, tail):
        return _clock_time(m, now, clock), True
    return None, False


def screen_limit(raw: bytes, clock: Clock) -> Limit | None:
    """The usage limit a worker's raw output tail ends on (its terminal codes filtered)."""
    return find_limit(screen_text(raw), clock)


def said_until(raw: bytes, clock: Clock) -> str | None:
    """HH:MM (local; stamps.until_text) of the reset the raw output tail ends on, else None."""
    lim = screen_limit(raw, clock)
    if lim is None:
        return None
    return until_text(clock.local_tm(lim.said_at), lim.said_at - clock.now())
