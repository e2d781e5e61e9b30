"""Spend readers a light verb needs: prices, the ledger, the breakers, the decide cap, money.

And which preset agent CLIs say what they spend in their own output (a decide's stream, a
worker's session records): spelled here rather than read from the runner profiles
(home/runners.py), which cost every cold `looop status` ~0.7 ms to load, and here rather than
a module of its own, which it would pay again. tests/unit/test_runner_profiles.py holds the
table to the profiles' own `reports_cost`, so a new CLI that reports cost fails a test until
it is named here too."""

# every profile whose reports_cost is true, in `looop init`'s order (home/runners.RUNNERS)
REPORTING = ("claude", "codex", "opencode", "pi", "gemini")
COST_REPORTING = frozenset(REPORTING)
SAID = ", ".join(REPORTING[:-1]) + " or " + REPORTING[-1]  # as a message names them
