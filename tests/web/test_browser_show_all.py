""" "show all" in real headless Chromium when the fleet answers out of order: a read of the
live fleet begun before the box was ticked, answered after the read of every worker (a slow
SSH host makes it so), is not drawn over it — the ended worker stays listed with its buttons,
not hidden until the page's next change or its once-a-minute read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError
from tests.clocks import FixedClock
from tests.helpers import clean_env
from tests.web.conftest import serving
from tests.web.test_browser import _click, _text
from tests.web.test_browser import browser_parts as browser_parts  # the fixture, shared
from tests.web.test_browser import driver as driver

pytestmark = pytest.mark.timeout(120)

# Before the page's own scripts: every read of the live fleet (no ?all) is held until the
# test lets it go; `looopStaleRead` is set once a held one's body has been read, and the page's
# handling of it runs in the microtasks straight after, before any script of the test's. It
# is asked without the ETag of the rows the page came with: a full answer, as when the fleet
# moved meanwhile, not a 304.
HOLD = """
window.looopHeld = [];
window.looopStaleRead = false;
const real = window.fetch.bind(window);
window.fetch = (url, opts) => {
  if (!String(url).endsWith("/api/v1/sessions")) return real(url, opts);
  const got = real(url, { ...opts, headers: {} });
  return new Promise((done) => window.looopHeld.push(() => done(got.then((r) => {
    const body = r.json.bind(r);
    r.json = async () => { const v = await body(); window.looopStaleRead = true; return v; };
    return r;
  }))));
};"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A home with w1 live and w0 ended, and `looop web` serving it (a real process)."""
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(tmp_path / "config.json"))
    spawn(data, "w0", ["true"], cwd=data, env=dict(env))
    wait(data, "w0", 30, FixedClock())
    spawn(data, "w1", ["cat"], cwd=data, env=dict(env))
    try:
        with serving(env) as url:
            yield {"url": url}
    finally:
        with contextlib.suppress(SessionError):
            kill(data, "w1")
        wait(data, "w1", 30, FixedClock())


def test_a_late_read_of_the_live_fleet_does_not_hide_the_ended_workers(
    site: dict[str, Any], driver: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def until(cond: str, what: str) -> None:
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(cond), what)

    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOLD})
    driver.get(site["url"])
    until("return window.looopHeld.length > 0", "the page's first fleet read, held")
    _click(driver, "#show-all")
    until("return !!document.querySelector('#fleet tr[data-id=\"w0\"]')", "w0 listed")
    driver.execute_script("for (const go of window.looopHeld.splice(0)) go()")
    until("return window.looopStaleRead", "the late read answered and handled")
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#fleet tbody tr')].map((tr) => tr.dataset.id)"
    )
    assert "w0" in rows and "w1" in rows, rows
    assert "exited" in _text(driver, '#fleet tr[data-id="w0"]')
