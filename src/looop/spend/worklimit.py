"""A worker's own output tail read for its provider's usage limit: `limited until HH:MM` in
`ls` and the beat's fleet rows (home/needsinput.limited_until looks here only for a tail that
names a limit: the terminal filter and the parser are not loaded otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.home.stamps import until_text
from looop.home.textsafe import screen_text
from looop.spend.limits import find_limit

if TYPE_CHECKING:
    from looop.home.clock import Clock


def said_until(raw: bytes, clock: Clock) -> str | None:
    """HH:MM (local; stamps.until_text) of the reset the raw output tail ends on, else None."""
    lim = find_limit(screen_text(raw), clock.now(), clock.zone())
    if lim is None:
        return None
    return until_text(clock.local_tm(lim.said_at), lim.said_at - clock.now())
