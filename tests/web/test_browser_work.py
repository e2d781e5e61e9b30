"""The dashboard you can work from, in real headless Chromium: goals and schedules, a beat's
run, writing a goal and starting a repo worker from the page, its diff, typing into it
(journaled with the text), finished workers behind "show all" with how they ended, an answer
confirmed first, the header's breaker and pause, and no sideways scrolling at 1400 px or
400 px (screenshots in tests/web/artifacts/)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.sessions.state import get_session
from tests.helpers import clean_env, kill_sessions, wait_until
from tests.web.conftest import LOOOP, serving
from tests.web.test_browser import ARTIFACTS, _click, _text, browser_parts, driver

__all__ = ["browser_parts", "driver"]  # the fixtures this module borrows

WIDE = (1400, 900)
NARROW = (400, 860)
LONG = "x" * 400  # one word wider than any screen: it must wrap or scroll inside its box


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOOOP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _config(tmp: Path, budget: float) -> dict[str, Any]:
    script = tmp / "script.json"
    script.write_text(json.dumps([{"action": "noop", "reason": "all quiet"}] * 50))
    # a worker that writes its prompt into its checkout, then waits (its diff shows the file)
    worker = 'sh -c "cp {{prompt_file}} notes.txt; exec sleep 600"'
    tick = f"{sys.executable} -m looop.demo.runner --script {script}"
    return {
        "default": "s",
        "runners": {"s": {"tick": tick, "worker": worker}},
        "max_daily_usd": budget,
    }


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A data dir after one real beat, with a schedule and a git repo beside it, served by
    `looop web` (a real process)."""
    data = tmp_path / "data"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(tmp_path, 0)))
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config))
    beat = _cli(env, "tick")
    assert beat.returncode == 0, beat.stderr
    sched = _cli(env, "schedule", "write", "nightly", "--every", "1h", "--note", "tidy up")
    assert sched.returncode == 0, sched.stderr
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=30)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True, timeout=30)
    try:
        with serving(env) as url:
            yield {"url": url, "data": data, "env": env, "repo": repo, "config": config}
    finally:
        _cli(env, "down")
        kill_sessions(data / "sessions")


def _fits(driver: Any, size: tuple[int, int], name: str) -> None:
    """At this width the page never scrolls sideways; its screenshot is saved to look at."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 800},
    )

    def measured() -> tuple[int, int]:
        got = driver.execute_script(
            "return [document.scrollingElement.scrollWidth, window.innerWidth]"
        )
        return int(got[0]), int(got[1])

    wait_until(lambda: measured()[1] == size[0], 10, f"the page laid out at {size[0]} px")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}-{size[0]}x{size[1]}.png"))
    wide, inner = measured()
    assert wide <= inner, f"the page scrolls sideways at {size[0]} px: {wide} > {inner}"


def _journal(data: Path) -> str:
    return (data / "journal.md").read_text()


def _viewer(driver: Any) -> str:
    wait_until(
        lambda: driver.execute_script("return document.querySelector('#viewer').open"),
        10,
        "the viewer open",
    )
    return _text(driver, "#viewer")


def _close_viewer(driver: Any) -> None:
    _click(driver, "#viewer-close")
    wait_until(
        lambda: not driver.execute_script("return document.querySelector('#viewer').open"),
        10,
        "it closed",
    )


@pytest.mark.timeout(240)
def test_a_dashboard_to_work_from(home: dict[str, Any], driver: Any) -> None:
    data, env = home["data"], home["env"]
    driver.get(home["url"])
    # goals (the starter's) and schedules have panels
    wait_until(lambda: "playbook-daily" in _text(driver, "#goals"), 20, "the goals panel")
    wait_until(lambda: "nightly" in _text(driver, "#schedules"), 20, "the schedules panel")
    assert "tidy up" in _text(driver, "#schedules")
    favicon = driver.execute_script("return document.querySelector('link[rel=icon]').href")
    with urllib.request.urlopen(favicon, timeout=10) as r:
        assert r.headers["content-type"].startswith("image/svg") and b"<svg" in r.read()

    # the beat links to its run: the decision, the prompt it was given, what came back
    (run_dir,) = (data / "runs").iterdir()
    _click(driver, f'#beats a[data-run="{run_dir.name}"]')
    shown = _viewer(driver)
    decided = json.loads((run_dir / "result.json").read_text())
    assert f"journal: {decided['journal']}" in shown and f"action: {decided['action']}" in shown
    first = next(ln for ln in (run_dir / "prompt.md").read_text().splitlines() if ln.strip())
    assert first.strip() in shown
    _close_viewer(driver)

    # write a goal from the page: the executor writes it and journals it
    _click(driver, "#goal-box summary")
    driver.find_element("css selector", "#goal-id").send_keys("ship-notes")
    driver.find_element("css selector", "#goal-body").send_keys("Release notes are out.")
    _click(driver, "#goal button[type=submit]")
    goal = data / "goals" / "ship-notes.md"
    wait_until(goal.exists, 20, "goals/ship-notes.md written")
    assert "Release notes are out." in goal.read_text()
    wait_until(lambda: "web: write-goal ship-notes" in _journal(data), 10, "the goal journaled")
    wait_until(lambda: "ship-notes" in _text(driver, "#goals"), 20, "the goal listed")

    # start a repo worker from the page (a relative repo is refused first, in one line)
    _click(driver, "#start-box summary")
    driver.find_element("css selector", "#start-id").send_keys("w2")
    driver.find_element("css selector", "#start-prompt").send_keys("draft the release notes")
    driver.find_element("css selector", "#start-repo").send_keys("repo")
    _click(driver, "#start button[type=submit]")
    wait_until(lambda: "absolute path or a URL" in _text(driver, "#toast"), 10, "the refusal")
    assert not (data / "sessions" / "w2").exists()
    driver.find_element("css selector", "#start-repo").clear()
    driver.find_element("css selector", "#start-repo").send_keys(str(home["repo"]))
    _click(driver, "#start button[type=submit]")
    wait_until(lambda: "web: start-worker w2" in _journal(data), 30, "the start journaled")
    assert get_session(data, "w2").alive

    # its diff: the file it wrote in its own checkout
    wait_until(lambda: "looop/w2" in _text(driver, "#fleet tbody"), 20, "w2's branch listed")
    _click(driver, 'button[data-diff="w2"]')
    wait_until(lambda: "notes.txt" in _text(driver, "#viewer-body"), 20, "w2's diff")
    assert "draft the release notes" in _text(driver, "#viewer-body")
    _close_viewer(driver)

    # what is typed into it is journaled with its text (a long line too)
    _click(driver, '#fleet tr[data-id="w2"]')
    wait_until(lambda: "W2" in _text(driver, "#term-id"), 10, "w2 selected")  # h2: capitals
    driver.find_element("css selector", "#send-text").send_keys("say hello " + LONG)
    _click(driver, "#send button[type=submit]")
    wait_until(lambda: "web: steer w2 · say hello xxx" in _journal(data), 20, "typed, journaled")
    wait_until(lambda: "xxxxxxxx" in _text(driver, "#term"), 20, "the long line on its screen")

    # an answer is confirmed first: dismissed, nothing is answered
    asker = subprocess.Popen(
        [LOOOP, "ask", "w2", "--prompt", "Delete the old branch? " + LONG, "--options", "yes,no"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: "Delete the old branch?" in _text(driver, "#asks"), 20, "the ask")
        for size, name in ((WIDE, "work-wide"), (NARROW, "work-narrow")):
            _fits(driver, size, name)
        _click(driver, '#asks button[data-option="yes"]')
        alert = driver.switch_to.alert
        assert "Delete the old branch?" in alert.text and "yes" in alert.text
        alert.dismiss()
        time.sleep(1.0)  # an answer sent by mistake would reach the asker within this
        assert asker.poll() is None, "the ask was answered without the confirm"
        _click(driver, '#asks button[data-option="yes"]')
        driver.switch_to.alert.accept()
        out, err = asker.communicate(timeout=30)
    finally:
        if asker.poll() is None:
            asker.kill()
            asker.communicate()
    assert asker.returncode == 0 and out.strip() == "yes", err

    # killed, it leaves the living list; "show all" brings it back with how it ended
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    _click(driver, 'button[data-kill="w2"]')
    driver.switch_to.alert.accept()
    wait_until(lambda: not get_session(data, "w2").alive, 20, "w2 killed")
    wait_until(lambda: "w2" not in _text(driver, "#fleet tbody"), 20, "w2 off the list")
    _click(driver, "#show-all")
    wait_until(lambda: "w2" in _text(driver, "#fleet tbody"), 20, "w2 under show all")
    row = _text(driver, '#fleet tr[data-id="w2"]')
    assert "killed" in row or "exited" in row, row
    for size, name in ((WIDE, "all-wide"), (NARROW, "all-narrow")):
        _fits(driver, size, name)


@pytest.mark.timeout(240)
def test_the_header_says_breaker_and_paused(home: dict[str, Any], driver: Any) -> None:
    from looop.spend.record import append_cost

    data, env, config = home["data"], home["env"], home["config"]
    config.write_text(json.dumps(_config(config.parent, 1.0)))
    append_cost(data / "cost.jsonl", time.time(), "session", "w9", "s", 2.5)  # over the cap
    up = _cli(env, "up")
    assert up.returncode == 0, up.stderr
    driver.get(home["url"])
    wait_until(lambda: "breaker" in _text(driver, "#pulse"), 20, "the breaker in the header")
    assert "ok" not in _text(driver, "#pulse")
    remedy = _text(driver, "#remedy")
    assert remedy and "max_daily_usd" in remedy, remedy  # how to lift it, in its own words
    _fits(driver, NARROW, "breaker-narrow")
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    config.write_text(json.dumps(_config(config.parent, 100.0)))  # the cap raised: lifted
    wait_until(lambda: "pulse ok" in _text(driver, "#pulse"), 30, "pulse ok again")
    assert not driver.find_element("css selector", "#remedy").is_displayed()
    _click(driver, "#pause")
    wait_until(lambda: _text(driver, "#pulse") == "paused", 60, "paused in the header")
    assert "paused the pulse" in _journal(data)
    _click(driver, "#resume")
    wait_until(lambda: _text(driver, "#pulse").startswith("pulse "), 60, "running again")
