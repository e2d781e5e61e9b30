"""The review panel in real headless Chromium for a worker on an SSH host of the lab: its
change read there (file list and hunks), a line comment and a whole-change comment written and
sent (the ended worker resumed there with one message holding both and their lines), the
change approved and landed in the host's repository (checked by git run there, over SSH),
journaled here as the user's from the web on that host — the panel laid out at desktop and
phone widths with nothing scrolling sideways and every button in reach. A worker whose host is
cut off shows one line in the panel, soon, not a stack or a wait without end. Screenshots
land in tests/web/artifacts/ (git-ignored) to be looked at."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hosts.conftest import Home, Host, Lab
from tests.hosts.lab import PORT
from tests.hosts.repos import git
from tests.hosts.test_host_land import _journal, _settled
from tests.hosts.test_host_land_web import _ended_worker
from tests.hosts.webutil import serve
from tests.web.test_browser import ARTIFACTS, DESKTOP, PHONE, _click, _text, browser_parts, driver
from tests.web.test_browser_review import emulate

__all__ = ["browser_parts", "driver"]  # the fixtures this module borrows

BUTTONS = ("#review-close", "#review-send", "#review-mode", "#review-land")


def until(driver: Any, cond: Callable[[], object], timeout: float, what: str) -> None:
    """Wait for `cond` as the browser's own event: WebDriverWait, failing with what it was."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda _: cond(), f"{what} not reached in {timeout}s")


def git_there(lab: Lab, h: Host, repo: Path, *args: str) -> str:
    """git run on the host as its user, over SSH: what the host's repository holds."""
    argv = ["ssh", "-F", str(lab.ssh_config), "-p", str(PORT), f"{h.user}@{h.addr}"]
    argv += ["git", "-C", str(repo), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def laid_out(driver: Any, wh: tuple[int, int], name: str) -> None:
    """The page at this size: neither it nor the panel scrolls sideways, and every button of
    the panel, scrolled to, lies inside the view and is the thing a tap there hits."""
    emulate(driver, wh)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}-{wh[0]}x{wh[1]}.png"))
    page, panel, inner = driver.execute_script(
        "const d = document.querySelector('#review');"
        "return [document.documentElement.scrollWidth, d.scrollWidth - d.clientWidth,"
        " window.innerWidth]"
    )
    assert page <= inner and panel <= 0, f"{name} scrolls sideways at {wh[0]} px: {page}, {panel}"
    for css in BUTTONS:
        hit = driver.execute_script(
            "const b = document.querySelector(arguments[0]);"
            "b.scrollIntoView({block: 'center', inline: 'nearest'});"
            "const r = b.getBoundingClientRect();"
            "if (r.left < 0 || r.right > window.innerWidth || r.width < 24 || r.height < 24)"
            "  return `at ${r.left}..${r.right} of ${window.innerWidth}, ${r.width}x${r.height}`;"
            "const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
            "return at === b || b.contains(at) ? '' : `covered by ${at && at.outerHTML}`",
            css,
        )
        assert hit == "", f"{css} out of reach at {wh[0]} px: {hit}"


def open_review(driver: Any, wid: str, url: str) -> None:
    driver.get(url)
    _click(driver, "#show-all")  # an ended worker is listed with its branch
    _click(driver, f'button[data-review="{wid}"]', timeout=60)
    until(driver, lambda: wid in _text(driver, "#review-title").lower(), 20, "the panel open")


@pytest.mark.timeout(300)
def test_review_panel_comments_sends_and_lands_a_worker_on_a_host(
    home: Home, tmp_path: Path, driver: Any
) -> None:
    data, app, told, h1 = _ended_worker(home, tmp_path, "hb1")
    tip = git_there(home.lab, h1, app, "rev-parse", "looop/hb1")
    with serve(data) as web:
        open_review(driver, "hb1", web.url)
        title = _text(driver, "#review-title").lower()  # the page shows it in capitals
        assert title == "review of hb1 @h1", title  # where its change is
        until(driver, lambda: "I added a line" in _text(driver, "#review-body"), 60, "read there")
        assert tip[:12] in _text(driver, "#review-head")
        files = driver.execute_script(
            "return [...document.querySelectorAll('#review .rv-file')].map(f => f.dataset.path)"
        )
        assert files == ["README"], files
        added = _text(driver, '#review .rv-l.add[data-file="README"][data-line="2"]')
        assert "by the worker" in added, added
        assert "app" in _text(driver, '#review .rv-l.ctx[data-file="README"][data-line="1"]')

        # a line comment by clicking its line, one on the whole change, both in one round
        _click(driver, '#review .rv-l[data-file="README"][data-line="2"]')
        driver.find_element("css selector", "#review .rv-at textarea").send_keys("say who")
        _click(driver, "#review .rv-at button[type=submit]")
        until(driver, lambda: "say who" in _text(driver, "#review .rv-note"), 60, "drafted")
        # drafted, its form is gone: not left open holding the text as if still unsaid
        assert driver.find_elements("css selector", "#review .rv-at") == []
        driver.find_element("css selector", "#review-all-text").send_keys("and add a test")
        _click(driver, "#review-all button[type=submit]")
        until(driver, lambda: "Send 2 comment(s)" in _text(driver, "#review-send"), 60, "two")
        laid_out(driver, DESKTOP, "far-review-desktop")
        laid_out(driver, PHONE, "far-review-phone")

        # sent from the phone: the worker, resumed on its host, is handed one message
        _click(driver, "#review-send")
        until(driver, lambda: told.exists() and "add a test" in told.read_text(), 60, "resumed")
        message = told.read_text()
        assert message.count("Review of your change (round 1") == 1, message
        assert "1. README:2: say who" in message, message
        assert ">    2 | by the worker" in message, message  # the line, read on the host
        assert "2. the whole change: and add a test" in message, message
        until(driver, lambda: _text(driver, "#review-send") == "Send", 60, "the round sent")
        assert "web: sent review round 1 to hb1 (2 comment(s)" in _journal(data)

        # approved and landed (fast-forward) at desktop width: main moved there
        emulate(driver, DESKTOP)
        driver.find_element("css selector", "#review-mode option[value=ff]").click()
        _click(driver, "#review-land")
        alert = driver.switch_to.alert
        assert "Land worker hb1" in alert.text, alert.text
        alert.accept()
        landed = f"landed hb1 into main at {tip[:12]}"
        until(driver, lambda: landed in _text(driver, "#review-head"), 90, "landed, said")
        laid_out(driver, DESKTOP, "far-review-landed-desktop")
    assert git_there(home.lab, h1, app, "rev-parse", "main") == tip
    line = _journal(data).splitlines()[-1]
    assert "user (web): landed worker hb1 on host h1:" in line and tip[:12] in line, line
    _settled(data)


@pytest.mark.timeout(300)
def test_review_panel_of_a_worker_on_a_cut_off_host_says_one_line(
    home: Home, tmp_path: Path, driver: Any
) -> None:
    data, app, _, h1 = _ended_worker(home, tmp_path, "hb2")
    main = git_there(home.lab, h1, app, "rev-parse", "main")
    with serve(data) as web:
        driver.get(web.url)
        _click(driver, "#show-all")
        _click(driver, 'button[data-review="hb2"]', timeout=60)  # listed while the host is up
        _click(driver, "#review-close")
        h1.cut()
        try:
            _click(driver, 'button[data-review="hb2"]')
            until(driver, lambda: "unreachable" in _text(driver, "#review-head"), 90, "said")
            said = _text(driver, "#review-head")
            assert "worker hb2 is unreachable: host h1 does not answer" in said, said
            assert "\n" not in said and "Traceback" not in said and ": —" not in said, said
            assert _text(driver, "#review-title").lower() == "review of hb2 @h1"
            assert _text(driver, "#review-body") == ""
            for css in ("#review-send", "#review-land"):  # nothing to act on: no change read
                assert not driver.find_element("css selector", css).is_enabled(), css
            laid_out(driver, PHONE, "far-review-unreachable-phone")
            laid_out(driver, DESKTOP, "far-review-unreachable-desktop")
        finally:
            h1.restore()
    assert git_there(home.lab, h1, app, "rev-parse", "main") == main


@pytest.mark.timeout(300)
def test_review_panel_shows_a_conflict_on_a_host_as_one_line_and_sends_it_back(
    home: Home, tmp_path: Path, driver: Any
) -> None:
    data, app, told, h1 = _ended_worker(home, tmp_path, "hb3")
    # the user's own line on the host's main, where the worker's line goes
    (app / "README").write_text("app\nthe user's line\n")
    git("-C", str(app), "commit", "-qam", "a conflicting line")
    subprocess.run(["chown", "-R", f"{h1.user}:{h1.user}", str(app)], check=True, timeout=30)
    main = git_there(home.lab, h1, app, "rev-parse", "main")
    with serve(data) as web:
        open_review(driver, "hb3", web.url)
        until(driver, lambda: "I added a line" in _text(driver, "#review-body"), 60, "read there")
        emulate(driver, PHONE)
        driver.find_element("css selector", "#review-mode option[value=merge]").click()
        _click(driver, "#review-land")
        driver.switch_to.alert.accept()
        until(driver, lambda: _text(driver, "#review-conflict") != "", 90, "the conflict said")
        said = _text(driver, "#review-conflict-text")
        assert "on host h1:" in said and "conflicts with main" in said, said
        assert "README" in said and "\n" not in said and "Traceback" not in said, said
        laid_out(driver, PHONE, "far-review-conflict-phone")
        _click(driver, "#review-sendback")
        until(driver, lambda: told.exists() and "README" in told.read_text(), 60, "sent back")
        assert "Review of your change (round 1" in told.read_text()
    assert git_there(home.lab, h1, app, "rev-parse", "main") == main  # nothing landed
    assert "landed worker hb3" not in _journal(data)
    _settled(data)


def _pause(h: Host, sig: int) -> None:
    """Every process of the host's user, and its sshd, stopped (SIGSTOP) or let go (SIGCONT):
    a host that takes connections and answers nothing."""
    listed = subprocess.run(
        ["ps", "-u", h.user, "-o", "pid="], capture_output=True, text=True, timeout=30
    )
    for pid in [h.sshd.pid, *map(int, listed.stdout.split())]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# every text the panel's head showed, in order, however briefly
WATCH_HEAD = """
window.looopHeads = [];
new MutationObserver(() => window.looopHeads.push(document.querySelector('#review-head')
  .textContent)).observe(document.querySelector('#review-head'), {childList: true,
  subtree: true, characterData: true});"""


@pytest.mark.timeout(300)
def test_review_panel_of_a_worker_on_a_hung_host_says_it_reads_then_one_line(
    home: Home, tmp_path: Path, driver: Any
) -> None:
    data, _, _, h1 = _ended_worker(home, tmp_path, "hb4")
    with serve(data) as web:
        driver.get(web.url)
        _click(driver, "#show-all")
        until(driver, lambda: driver.find_elements("css selector", '[data-review="hb4"]'), 60, "")
        driver.execute_script(WATCH_HEAD)
        _pause(h1, signal.SIGSTOP)
        try:
            _click(driver, 'button[data-review="hb4"]')
            until(driver, lambda: "unreachable" in _text(driver, "#review-head"), 120, "said")
            said = _text(driver, "#review-head")
            assert "worker hb4 is unreachable: host h1 d" in said, said  # does / did not answer
            assert "\n" not in said and "Traceback" not in said and ": —" not in said, said
            heads = driver.execute_script("return window.looopHeads")
            assert heads[0] == "reading its change on host h1…", heads  # while it was asked
            for css in ("#review-send", "#review-land"):
                assert not driver.find_element("css selector", css).is_enabled(), css
            laid_out(driver, PHONE, "far-review-hung-phone")
        finally:
            _pause(h1, signal.SIGCONT)
