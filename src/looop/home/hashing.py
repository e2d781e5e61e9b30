"""FNV-1a 128 (stable across restarts and versions) and the wake signal of a snapshot."""

from __future__ import annotations

TYPE_CHECKING = False  # imported on the hot path (`state --json`): no `typing`

if TYPE_CHECKING:
    from typing import Any

_OFFSET = 0x6C62272E07BB014262B821756295C58D
_PRIME = 0x0000000001000000000000000000013B
_MASK = (1 << 128) - 1


def fnv1a_128(data: bytes) -> str:
    """32 lowercase hex digits; only for change detection, never security."""
    h = _OFFSET
    prime, mask = _PRIME, _MASK
    for b in data:
        h = ((h ^ b) * prime) & mask
    return f"{h:032x}"


def wake_signal(value: Any) -> Any:
    """The part of a snapshot that wakes the loop: `.signal` if present, else all."""
    if isinstance(value, dict) and "signal" in value:
        return value["signal"]
    return value
