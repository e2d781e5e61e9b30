"""The dashboard in real headless Chromium (Debian's, driven by selenium through
chromium-driver): log in with the printed URL, watch a live worker's screen change, answer a
blocked `looop ask` with a button, kill a worker. Screenshots at phone and desktop sizes land in
tests/web/artifacts/ (git-ignored) to be looked at."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.sessions.client import kill, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError, get_session
from tests.clocks import FixedClock
from tests.helpers import clean_env, said, wait_until
from tests.web.conftest import LOOOP, serving
from tests.web.install import CannotInstall, install

ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = (390, 844)
DESKTOP = (1280, 900)
# a worker whose screen changes on its own: a counter redrawn in place, in colour
COUNTER = 'i=0; while :; do i=$((i+1)); printf "\\r\\033[32mtick\\033[0m %d " $i; sleep 0.3; done'


@pytest.fixture(scope="module")
def browser_parts() -> tuple[str, str]:
    try:
        return install()
    except CannotInstall as e:
        pytest.skip(f"BROWSER TESTS SKIPPED: {e}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A data dir with live worker w1 and `looop web` serving it (a real process)."""
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(tmp_path / "config.json"))
    _history(data)
    spawn(data, "w1", ["bash", "-c", COUNTER], cwd=data, env=dict(os.environ))
    try:
        with serving(env) as url:
            yield {"url": url, "data": data, "env": env}
    finally:
        with contextlib.suppress(SessionError):
            kill(data, "w1")
        wait(data, "w1", 30, FixedClock())


def _history(data: Path) -> None:
    """A past the page can draw: two beats in events.jsonl and some spend in the ledger."""
    import json
    import time

    from looop.home.stamps import utc_stamp_ms
    from looop.spend.record import append_cost

    now = time.time()
    beats = [
        {"event": "tick_start", "ts": utc_stamp_ms(now - 120)},
        {"event": "decided", "ts": utc_stamp_ms(now - 110), "action": "start-worker",
         "journal": "start w1 on the release notes", "run_id": "tick-1"},
        {"event": "tick_start", "ts": utc_stamp_ms(now - 60)},
        {"event": "world_unchanged", "ts": utc_stamp_ms(now - 59)},
    ]  # fmt: skip
    (data / "events.jsonl").write_text("".join(json.dumps(b) + "\n" for b in beats))
    for days, usd in ((0, 0.42), (1, 1.8), (3, 0.9), (6, 2.4)):
        append_cost(data / "cost.jsonl", now - days * 86400, "session", "w1", "claude", usd)
    append_cost(data / "cost.jsonl", now - 86400, "tick", "tick-1", "claude", 0.3)  # a decide


@pytest.fixture
def driver(browser_parts: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_parts
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    d = webdriver.Chrome(service=Service(chromedriver), options=opts)
    d.set_page_load_timeout(30)
    try:
        yield d
    finally:
        d.quit()


def _text(driver: Any, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(driver.find_element("css selector", css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _click(driver: Any, css: str, timeout: float = 20) -> None:
    """Click what `css` names once it is there: the page redraws its tables every poll, so an
    element found a moment ago may be gone; a stale one was not clicked, so the click is tried
    again on the redrawn one. It is brought to the middle of the view first, as a person
    scrolls to it: scrolled to the top edge it would sit under the page's sticky header."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )

    def clicked() -> bool:
        try:
            el = driver.find_element("css selector", css)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
            el.click()
        except (
            ElementClickInterceptedException,
            NoSuchElementException,
            StaleElementReferenceException,
        ):
            return False
        return True

    wait_until(clicked, timeout, f"a click on {css}")


def _shoot(
    driver: Any, name: str, size: tuple[int, int], mobile: bool, at: str | None = None
) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile},
    )
    if at is None:
        driver.execute_script("window.scrollTo(0, 0)")
    else:  # the lower half of a phone's page
        driver.execute_script(f"document.querySelector({at!r}).scrollIntoView()")
    path = ARTIFACTS / f"{name}-{size[0]}x{size[1]}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.mark.timeout(180)
def test_dashboard_end_to_end(site: dict[str, Any], driver: Any) -> None:
    driver.get(site["url"])
    assert "token=" not in driver.current_url  # the token left the address bar
    wait_until(lambda: "w1" in _text(driver, "#fleet tbody"), 20, "w1 in the fleet")
    # the spend chart stacks each day's decides on its workers
    wait_until(lambda: "workers $" in _text(driver, "#chart-peak"), 20, "the spend chart")
    assert "decides $0.30 · workers $5.52" in _text(driver, "#chart-peak")
    stacked = driver.execute_script(
        "return [...document.querySelectorAll('#chart rect.decides')]"
        ".map(r => r.querySelector('title').textContent)"
    )
    assert any("(decides $0.30, workers $1.80)" in t for t in stacked), stacked

    # a live worker's screen, following its output
    def tick() -> int | None:
        m = re.search(r"tick (\d+)", _text(driver, "#term"))
        return int(m.group(1)) if m else None

    wait_until(lambda: tick() is not None, 20, "the worker's screen")
    first = tick()
    assert first is not None
    wait_until(lambda: (tick() or 0) > first, 20, "the screen to change")
    green = driver.execute_script(
        "return [...document.querySelectorAll('#term span')]"
        ".some(s => s.textContent === 'tick' && s.style.color !== '')"
    )
    assert green, "the colour of the worker's output is lost"

    # a blocked `looop ask`, answered with a button
    asker = subprocess.Popen(
        [LOOOP, "ask", "w1", "--prompt", "Ship the release?", "--options", "yes,no"],
        env=site["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: "Ship the release?" in _text(driver, "#asks"), 20, "the ask on the page")
        _shoot(driver, "ask-pending-phone", PHONE, mobile=True)
        _shoot(driver, "ask-pending-desktop", DESKTOP, mobile=False)
        _click(driver, '#asks button[data-option="yes"]')
        driver.switch_to.alert.accept()  # an answer is always confirmed first
        out, err = asker.communicate(timeout=30)
    finally:
        if asker.poll() is None:
            asker.kill()
            asker.communicate()
    assert asker.returncode == 0, err
    assert out.strip() == "yes"
    gone = lambda: "Ship the release?" not in _text(driver, "#needs-box")  # noqa: E731
    wait_until(gone, 20, "the ask to leave")
    assert "web: answered w1-1: yes" in said(site["data"])

    # kill the worker from its row
    _click(driver, 'button[data-kill="w1"]')
    driver.switch_to.alert.accept()
    wait_until(lambda: not get_session(site["data"], "w1").alive, 20, "w1 killed")
    wait_until(lambda: "w1" not in _text(driver, "#fleet tbody"), 20, "w1 off the fleet")
    wait_until(lambda: "kill-worker w1" in _text(driver, "#journal"), 20, "the kill journaled")
    _shoot(driver, "after-kill-phone", PHONE, mobile=True)
    _shoot(driver, "after-kill-phone-lower", PHONE, mobile=True, at="#spend-box")
    _shoot(driver, "after-kill-desktop", DESKTOP, mobile=False)
