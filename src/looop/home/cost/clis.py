"""The preset agent CLIs whose own output says what they spend: a decide's stream (meter.py)
and a worker's session records (loop/workmeter.py). Its own light module, so the status fast
path (statusspend.py) and the breakers name one set.

Spelled here rather than read from the runner profiles (home/runners.py): loading the five
profiles was ~0.7 ms of every cold `looop status`. tests/unit/test_runner_profiles.py holds
this table to the profiles' own `reports_cost`, so a new CLI that reports cost fails a test
until it is named here too."""

from __future__ import annotations

# every profile whose reports_cost is true, in `looop init`'s order (home/runners.RUNNERS)
REPORTING = ("claude", "codex", "opencode", "pi", "gemini")
COST_REPORTING = frozenset(REPORTING)
SAID = ", ".join(REPORTING[:-1]) + " or " + REPORTING[-1]  # as a message names them
