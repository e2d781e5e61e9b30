"""How long the loop holds back before it pays the runner again — a failing loop's backoff and
a provider's usage limit: the rules the beat's gates apply and `looop status` shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

BACKOFF_BASE_SECS = 60


def backoff_delay(fails: int, cap: int) -> int:
    """60 s doubling per consecutive failure, capped."""
    if fails <= 0:
        return 0
    return int(min(BACKOFF_BASE_SECS * (1 << min(fails - 1, 20)), cap))


def failed_at(ts: float, mono: float | None, now: float, mono_now: float | None) -> float | None:
    """The wall time of a failure stamped `ts` (wall) and `mono` (the monotonic clock), on
    today's wall clock: `ts` itself unless the wall clock has since stepped back behind it;
    then now less the monotonic time gone by, so the wait ends on time. None when neither
    clock can say (a stamp from the future with no usable monotonic reading, e.g. from
    before a reboot): the caller restarts the wait from now — never a stall the size of the
    step."""
    if ts <= now:
        return ts
    if mono is not None and mono_now is not None and mono_now >= mono:
        return now - (mono_now - mono)
    return None


def limit_in_force(rec: Mapping[str, Any], now: float, scheduled: bool) -> bool:
    """Whether a recorded provider limit still holds calls back: not lifted, before its reset,
    and its wake still scheduled (a human who dropped it wants the runner called again)."""
    until = rec.get("until")
    return not rec.get("lifted") and isinstance(until, int | float) and now < until and scheduled
