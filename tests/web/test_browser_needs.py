"""The dashboard's "Needs you" box in a real Chromium: a live worker paused at its spend
budget shows with the command that answers it, and leaves once it goes on."""

from __future__ import annotations

from typing import Any

import pytest

from looop.home import outcomes
from looop.home.spent import clear_over, mark_over
from tests.helpers import wait_until
from tests.web.test_browser import _click, _text, browser_parts, driver, site

__all__ = ["browser_parts", "driver", "site"]  # the fixtures this module uses


@pytest.mark.timeout(180)
def test_a_worker_over_budget_shows_in_needs_you_with_its_answer(
    site: dict[str, Any], driver: Any
) -> None:
    data = site["data"]
    driver.get(site["url"])
    wait_until(lambda: "Nothing else waits on you" in _text(driver, "#needs"), 30, "the box")
    mark_over(str(data), "w1", 1.2, 1.0, "pause")
    driver.refresh()
    want = "looop worker continue w1 --budget USD"
    wait_until(lambda: want in _text(driver, "#needs"), 30, "the over-budget worker")
    assert "budget w1" in _text(driver, "#needs")
    clear_over(str(data), "w1")
    driver.refresh()
    wait_until(lambda: "Nothing else waits on you" in _text(driver, "#needs"), 30, "it to go")


@pytest.mark.timeout(180)
def test_a_stalled_worker_shows_in_needs_you_and_its_button_clears_it(
    site: dict[str, Any], driver: Any
) -> None:
    data = str(site["data"])
    fail, rec = outcomes.End("exited", 2, last_line="Error: no config"), None
    for g in ("g1", "g2", "g3"):  # the same failure three times: stalled
        rec = outcomes.next_record(rec, "w9", g, fail, 3, "2027-01-15T08:00:00.000Z")
    outcomes.write_record(data, rec)
    driver.get(site["url"])
    want = "looop worker unstall w9"
    wait_until(lambda: want in _text(driver, "#needs"), 30, "the stalled worker")
    _click(driver, "#needs button.unstall")
    wait_until(lambda: outcomes.stalled(data, "w9") is None, 30, "the stall cleared")
    wait_until(lambda: "Nothing else waits on you" in _text(driver, "#needs"), 30, "it to go")
