"""The dashboard's "Needs you" card in a real Chromium: first on the page, its count what it
lists (asks included), each entry with the button that answers it — a worker paused at its
spend budget goes on from its Continue, a stalled one is cleared from its button."""

from __future__ import annotations

import time
from typing import Any

import pytest

from looop.human.mailbox import new_ask
from looop.spend.spent import budgets, mark_over
from looop.views import outcomes
from tests.helpers import wait_until
from tests.web.test_browser import _click, _text, browser_parts, driver, site

__all__ = ["browser_parts", "driver", "site"]  # the fixtures this module uses


@pytest.mark.timeout(180)
def test_a_worker_over_budget_shows_in_needs_you_with_its_answer(
    site: dict[str, Any], driver: Any
) -> None:
    data = site["data"]
    driver.get(site["url"])
    wait_until(lambda: "Nothing waits on you" in _text(driver, "#needs"), 30, "the box")
    first = driver.execute_script("return document.querySelector('main > .card').id")
    assert first == "needs-box"
    mark_over(str(data), "w1", 1.2, 1.0, "pause")
    new_ask(data / "asks", data / "answers", "w1", "Ship it?", None, [], time.time())
    driver.refresh()
    want = "looop worker continue w1 --budget USD"
    wait_until(lambda: want in _text(driver, "#needs"), 30, "the over-budget worker")
    wait_until(lambda: "Ship it?" in _text(driver, "#asks"), 30, "the ask in the same card")
    assert "budget w1" in _text(driver, "#needs")
    assert _text(driver, "#needs-count") == "2"  # the ask and the budget: what it lists
    _click(driver, "#needs button.continue")
    driver.switch_to.alert.send_keys("7")  # its new ceiling
    driver.switch_to.alert.accept()
    wait_until(lambda: budgets(str(data)).get("w1", (0.0, ""))[0] == 7.0, 30, "the new budget")
    wait_until(lambda: "budget w1" not in _text(driver, "#needs"), 30, "it to go")
    assert _text(driver, "#needs-count") == "1"


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
    wait_until(lambda: "Nothing waits on you" in _text(driver, "#needs"), 30, "it to go")
