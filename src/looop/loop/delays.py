"""How long a failing loop waits before it pays the runner again: one pure function, kept
apart from guards.py so `looop status` on a failing loop loads nothing else."""

from __future__ import annotations

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
