"""`looop status`'s spend block when the light reader (home/cost/statusspend.py) declines: the full
breakers, which answer and repair what it does not (a corrupt counter or decide ledger, a
quoted tick command), over Paths. Only that status loads this module (pathlib with it)."""

from __future__ import annotations

from pathlib import Path

from looop.home.cost.breakers import spend_status
from looop.home.paths import Paths

TYPE_CHECKING = False  # not `from typing`: importing typing costs the hot path ~3 ms

if TYPE_CHECKING:
    from looop.home.clock import Clock
    from looop.home.config import Knobs, Runner
    from looop.home.cost.views import SpendStatus


def spend_status_at(
    data: str, config: str, clock: Clock, knobs: Knobs, runner: Runner | None
) -> SpendStatus:
    """breakers.spend_status for the data dir and config file as strings."""
    return spend_status(Paths(Path(data), Path(config)), clock, knobs, runner)
