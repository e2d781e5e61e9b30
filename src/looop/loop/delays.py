"""How long a failing loop waits before it pays the runner again: one pure function, kept
apart from guards.py so `looop status` on a failing loop loads nothing else."""

from __future__ import annotations

BACKOFF_BASE_SECS = 60


def backoff_delay(fails: int, cap: int) -> int:
    """60 s doubling per consecutive failure, capped."""
    if fails <= 0:
        return 0
    return int(min(BACKOFF_BASE_SECS * (1 << min(fails - 1, 20)), cap))
