"""The preset agent CLIs whose own output says what they spend: a decide's stream (meter.py)
and a worker's session records (loop/workmeter.py). Its own light module, so the status fast
path (statusspend.py) and the breakers name one set."""

from __future__ import annotations

from looop.home.runners import RUNNERS

COST_REPORTING = frozenset(p.name for p in RUNNERS if p.reports_cost)
