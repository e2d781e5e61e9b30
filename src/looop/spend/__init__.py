"""Spend readers a light verb needs: prices, the ledger, the breakers, the decide cap; and here,
money amounts (which numbers are believed as USD, and how an amount is shown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def finite(x: float) -> bool:
    """math.isfinite(x), without loading math (a shared library)."""
    return x - x == 0.0


# One event or one ledger row claiming more than this is garbage, not spend.
MAX_USD = 1_000_000.0


def sane_usd(v: Any) -> float | None:
    """A money amount worth believing: a finite JSON number in [0, MAX_USD]."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v) if isinstance(v, float) or 0 <= v <= MAX_USD else -1.0  # a huge int overflows
    return f if finite(f) and 0.0 <= f <= MAX_USD else None


def usd(x: float) -> str:
    """$ with at most 4 decimals, trailing zeros trimmed: 0 -> $0, 1.5 -> $1.5, 0.12345 ->
    $0.1235."""
    if not finite(x):
        return "$?"
    s = f"{round(x, 4):.4f}".rstrip("0").rstrip(".")
    return "$0" if s in ("-0", "") else "$" + s


def parse_usd(text: str) -> float | None:
    """A self-reported amount ("0.42", "$0.42"): finite, >= 0 and sane, else None."""
    t = text.strip().removeprefix("$").strip()
    try:
        v = float(t)
    except ValueError:
        return None
    return sane_usd(v)
