"""Parse the duration and size arguments of the session verbs (`--timeout 30s`, `--size 120x40`)."""

from __future__ import annotations

import math
import re

# `ms` must be tried before `s`; the alternation order does that.
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_NO_TIMEOUT = {"", "none", "off", "never"}
_SIZE_RE = re.compile(r"(\d{1,4})[xX](\d{1,4})")
MAX_DURATION_S = 3660 * 86400.0
_DURATION_HINT = "use e.g. 500ms, 30s, 10m, 2h, 1d or bare seconds (0/none/off/never = no limit)"


def parse_duration(text: str, most: float | None = None) -> float | None:
    """Seconds for `text`; None means no timeout (0, 0s, 0ms, none, off, never, empty).
    Past ten years it is refused, or, with `most`, saturates at `most`."""
    raw = text.strip().lower()
    if raw in _NO_TIMEOUT:
        return None
    if raw.startswith("-"):
        raise ValueError(f"invalid duration `{text}`: it cannot be negative; {_DURATION_HINT}")
    m = _DURATION_RE.fullmatch(raw)
    if m is None:
        raise ValueError(f"invalid duration `{text}`: {_DURATION_HINT}")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if most is not None and not seconds <= most:  # inf too
        return most
    if not math.isfinite(seconds) or seconds > MAX_DURATION_S:
        # a deadline past this would overflow select() and sleep() long before it mattered
        raise ValueError(
            f"invalid duration `{text}`: over ten years; use none for no limit, or a shorter one"
        )
    # Zero in any unit means "no timeout", never "time out at once".
    return seconds if seconds > 0 else None


def parse_size(text: str) -> tuple[int, int]:
    """(cols, rows) from `COLSxROWS`; both 1..9999."""
    m = _SIZE_RE.fullmatch(text.strip())
    if m is not None:
        cols, rows = int(m.group(1)), int(m.group(2))
        if cols >= 1 and rows >= 1:
            return cols, rows
    raise ValueError(f"invalid size `{text}`: use COLSxROWS with both 1..9999, e.g. 120x40")
