"""The dashboard in headless Chromium with a worker on a real SSH host: its row names the
host, it opens like a local one and its screen follows; while the host is cut off the pane
and the row say `unreachable`, and the screen comes back by itself once the host does; it is
killed from its row. Screenshots land in tests/web/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.hosts.conftest import Home
from tests.hosts.util import looop
from tests.hosts.webutil import Web, web_server  # noqa: F401 (the `web` fixture)
from tests.web.test_browser import DESKTOP, PHONE, _click, _shoot, _text, browser_parts, driver

__all__ = ["browser_parts", "driver"]  # the fixtures this module borrows

# a screen that changes on its own: a counter redrawn in place, in colour
COUNTER = (
    "bash -c 'i=0; while :; do i=$((i+1)); "
    'printf "\\r\\033[32mtick\\033[0m %d " $i; sleep 0.3; done\' # {{prompt_file}}'
)


def _title(driver: Any) -> str:
    """The screen's heading as written (the page shows it in capitals)."""
    return str(driver.execute_script("return document.querySelector('#term-id').textContent"))


@pytest.mark.timeout(300)
def test_the_dashboard_shows_and_drives_a_remote_worker(home: Home, web: Web, driver: Any) -> None:
    d = home.data
    h3 = next(h for h in home.lab.hosts if h.name == "h3")
    start = looop(d, "worker", "start", "rd1", "x", "--host", "h3", "--command", COUNTER)
    assert start.returncode == 0, start.stderr
    driver.get(web.url)
    wait_until(lambda: "rd1 @h3" in _text(driver, "#fleet tbody"), 40, "rd1 and its host listed")
    _click(driver, 'tr[data-id="rd1"]')

    def tick() -> int | None:
        m = re.search(r"tick (\d+)", _text(driver, "#term"))
        return int(m.group(1)) if m else None

    wait_until(lambda: tick() is not None, 30, "the remote worker's screen")
    first = tick() or 0
    wait_until(lambda: (tick() or 0) > first, 30, "the remote screen following")
    assert _title(driver) == "rd1 @h3"

    h3.cut()
    try:
        wait_until(lambda: "unreachable" in _text(driver, "#term"), 60, "the pane unreachable")
        assert _title(driver) == "rd1 @h3 (unreachable)"
        row = 'tr[data-id="rd1"] td:nth-child(2)'
        wait_until(lambda: _text(driver, row) == "unreachable", 60, "the row unreachable")
        _shoot(driver, "remote-unreachable-desktop", DESKTOP, mobile=False)
        _shoot(driver, "remote-unreachable-phone", PHONE, mobile=True)
    finally:
        h3.restore()
    last = 0

    def ticking_again() -> bool:
        nonlocal last
        now = tick() or 0
        moved = last and now > last
        last = now
        return bool(moved)

    wait_until(ticking_again, 90, "the screen back and following by itself")
    assert _title(driver) == "rd1 @h3"

    _click(driver, 'button[data-kill="rd1"]')
    driver.switch_to.alert.accept()
    wait_until(
        lambda: "rd1" not in _text(driver, "#fleet tbody"), 60, "rd1 killed and off the fleet"
    )
    rows = looop(d, "ls", "-a", "--json").stdout
    assert '"rd1"' in rows and "kill-worker rd1" in looop(d, "journal").stdout
