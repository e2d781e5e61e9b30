"""Values from outside the home — an SSH host's answers, a Kubernetes pod's fields — read within
bounds: a number that is not one, not finite, negative or past any real value (1e308, NaN,
±Infinity, a 200-digit integer, a string) reads as unknown (None), never a traceback or an
overflow further on (a clock stamp, an age, a table column)."""

from __future__ import annotations

import math

from looop.home.stamps import parse_utc

AHEAD_S = 86400.0  # a host's clock may run ahead of ours; a day past now is no real moment
EXIT_MAX = 1 << 32  # an exit status is a small int; wider ones are shown as unknown
OFFSET_MAX = 1 << 62  # a byte offset into a log on disk
TEXT_MAX = 200  # a state, label or note shown on one row
AGE_MAX = 10 * 365 * 86400.0  # how long ago something happened: no worker is older


def _number(value: object) -> float | None:
    """A finite number as a float; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > 1 << 53:
        return None  # float() of a 200-digit integer overflows
    t = float(value)
    return t if math.isfinite(t) else None


def moment(value: object, now: float) -> float | None:
    """A Unix time at or before `now` (plus AHEAD_S), after the epoch; else None."""
    t = _number(value)
    return t if t is not None and 0.0 < t <= now + AHEAD_S else None


def age(value: object) -> float | None:
    """Seconds since something happened, as a host measured them (0..AGE_MAX); else None."""
    t = _number(value)
    return t if t is not None and 0.0 <= t <= AGE_MAX else None


def count(value: object, most: int) -> int | None:
    """An int in 0..most (a float that is a whole number counts); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None
        value = int(value) if abs(value) <= most else None
    return value if isinstance(value, int) and 0 <= value <= most else None


def exit_code(value: object) -> int | None:
    """An exit status as a process gives one (-EXIT_MAX..EXIT_MAX, signals negative)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -EXIT_MAX <= value <= EXIT_MAX else None


def words(value: object, most: int = TEXT_MAX) -> str | None:
    """A string, cut to `most` characters; anything else None."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= most else value[: most - 1] + "…"


def stamp(value: object, now: float) -> str | None:
    """An ISO-8601 UTC stamp (as looop writes them) that names a real moment; else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        t = parse_utc(value)
    except (ValueError, OverflowError):
        return None
    return value if moment(t, now) is not None else None
