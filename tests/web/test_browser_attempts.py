"""Attempts side by side in real headless Chromium against a real `looop web` and real git:
two attempts that ended put "2 attempts ended: pick one" in Needs you; its button opens one
table of both (readable on a phone: no sideways scroll), and a row opens that attempt's own
review, where it is read, commented on and landed."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from looop.sessions.state import get_session
from tests.helpers import wait_until
from tests.web.conftest import LOOOP
from tests.web.test_browser import PHONE, _click, _text, browser_parts, driver
from tests.web.test_browser_review import WORK, home, size

__all__ = ["browser_parts", "driver", "home"]  # the fixtures this module borrows


@pytest.mark.timeout(240)
def test_ended_attempts_are_compared_and_one_opened_from_needs_you(
    driver: Any, home: dict[str, Any]
) -> None:
    script = home["told"].parent / "attempt.sh"
    script.write_text(WORK.format(writes="printf 'x\\n' > $LOOOP_SESSION_ID.txt", subject="try"))
    argv = [LOOOP, "worker", "start", "grp", "work", "--no-sandbox", "--repo", str(home["repo"])]
    argv += ["--attempts", "2", "--command", f"bash '{script}' # {{{{prompt_file}}}}"]
    done = subprocess.run(argv, env=home["env"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for wid in ("grp.1", "grp.2"):
        wait_until(lambda w=wid: not get_session(home["data"], w).alive, 30, f"{wid} ended")
    driver.get(home["url"])
    wait_until(lambda: "2 attempts ended: pick one" in _text(driver, "#needs"), 30, "the pick")
    _click(driver, "#needs button.review")
    wait_until(lambda: "2 attempts" in _text(driver, "#review-head"), 30, "the table")
    rows = driver.find_elements("css selector", "#review .rv-attempt")
    assert [r.get_attribute("data-attempt") for r in rows] == ["grp.1", "grp.2"]
    assert all("+1" in r.text for r in rows), [r.text for r in rows]  # each its one new line
    size(driver, PHONE, "attempts")
    _click(driver, '#review .rv-attempt[data-attempt="grp.2"]')
    wait_until(lambda: "review of grp.2" in _text(driver, "#review-title").lower(), 20, "grp.2")
    wait_until(lambda: "grp.2.txt" in _text(driver, "#review-body"), 20, "its change")
