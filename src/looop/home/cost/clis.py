"""The preset agent CLIs whose own output says what they spend: a decide's stream (meter.py)
and a worker's session records (loop/workmeter.py). Its own light module, so the status fast
path (statusspend.py) and the breakers name one set."""

from __future__ import annotations

from looop.home.runners import RUNNERS

REPORTING = tuple(p.name for p in RUNNERS if p.reports_cost)  # in `looop init`'s order
COST_REPORTING = frozenset(REPORTING)
SAID = ", ".join(REPORTING[:-1]) + " or " + REPORTING[-1]  # as a message names them
