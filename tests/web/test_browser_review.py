"""The review panel in real headless Chromium against a real `looop web` and real git: at
desktop width a line is commented by clicking it, the whole change too, the round sent (the
ended worker resumed with it) and the change landed once confirmed (journaled as the user's,
from the web); at phone width a line comment and a send, a conflict shown as one line and sent
back as a comment, and a merge landed. Screenshots land in tests/web/artifacts/."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import ctx_for
from looop.home.clock import SystemClock
from looop.sessions.state import get_session
from tests.helpers import clean_env, kill_sessions, said, wait_until
from tests.integration.workerchange import new_repo
from tests.web.conftest import LOOOP, serving
from tests.web.test_browser import ARTIFACTS, DESKTOP, PHONE, _click, _text, browser_parts, driver

__all__ = ["browser_parts", "driver"]  # the fixtures this module borrows

# a worker that commits FILES (name=text pairs), writes its report, and ends
WORK = """set -e
{writes}
git add -A
git commit -qm '{subject}'
mkdir -p "$LOOOP_REPORTS_DIR"
printf 'I did: {subject}\\n' > "$LOOOP_REPORTS_DIR/$LOOOP_SESSION_ID.md"
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def rev(repo: Path, ref: str) -> str:
    """The commit `ref` names ("": none yet)."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "-q", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "data"
    told = tmp_path / "told"
    told.mkdir()
    # the resume line names the agent conversation, not the worker: one file per conversation
    resume = f"cat {{{{prompt_file}}}} >> '{told}/{{{{session_id}}}}.txt'"
    runner = {"tick": "true", "worker": "true", "resume": resume}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default": "sh", "runners": {"sh": runner}}))
    env = clean_env(tmp_path, data, LOOOP_CONFIG=str(config))
    repo = new_repo(tmp_path / "repo", "hello\n", "start")
    try:
        with serving(env) as url:
            yield {"url": url, "data": data, "env": env, "repo": repo, "told": told}
    finally:
        kill_sessions(data / "sessions")


def worker(home: dict[str, Any], wid: str, subject: str, files: dict[str, str]) -> None:
    """Worker `wid` started on the repo by the CLI; it commits `files` and ends."""
    writes = "\n".join(f"printf '{text}' > {name}" for name, text in files.items())
    script = home["told"].parent / f"{wid}.sh"
    script.write_text(WORK.format(writes=writes, subject=subject))
    argv = [LOOOP, "worker", "start", wid, "work", "--no-sandbox", "--repo", str(home["repo"])]
    argv += ["--command", f"bash '{script}' # {{{{prompt_file}}}} {{{{session_id}}}}"]
    done = subprocess.run(argv, env=home["env"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: not get_session(home["data"], wid).alive, 30, f"{wid} ended")


def emulate(driver: Any, wh: tuple[int, int]) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": wh[0], "height": wh[1], "deviceScaleFactor": 1, "mobile": wh[0] < 800},
    )
    wait_until(
        lambda: driver.execute_script("return window.innerWidth") == wh[0], 10, "the new width"
    )


def size(driver: Any, wh: tuple[int, int], name: str) -> None:
    """Lay the page out at this size; the panel must not scroll sideways; a screenshot."""
    emulate(driver, wh)
    wide, inner = driver.execute_script(
        "const d = document.querySelector('#review'); return [d.scrollWidth, d.clientWidth]"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}-{wh[0]}x{wh[1]}.png"))
    assert wide <= inner, f"the review scrolls sideways at {wh[0]} px: {wide} > {inner}"


def open_review(driver: Any, wid: str) -> None:
    _click(driver, f'button[data-review="{wid}"]')
    wait_until(lambda: f"review of {wid}" in _text(driver, "#review-title").lower(), 20, "open")
    wait_until(lambda: "I did" in _text(driver, "#review-body"), 20, "its report")


def comment_line(driver: Any, file: str, line: int, text: str) -> None:
    _click(driver, f'#review .rv-l[data-file="{file}"][data-line="{line}"]')
    driver.find_element("css selector", "#review .rv-at textarea").send_keys(text)
    _click(driver, "#review .rv-at button[type=submit]")
    wait_until(lambda: text in _text(driver, "#review .rv-note"), 20, "the comment under its line")


def journal(home: dict[str, Any]) -> str:
    path = home["data"] / "journal.md"
    return path.read_text() if path.exists() else ""


def told(home: dict[str, Any]) -> str:
    """What resumed workers were handed (one file per agent conversation)."""
    return "".join(p.read_text() for p in sorted(home["told"].iterdir()))


@pytest.mark.timeout(240)
def test_review_comment_send_and_land_on_desktop_and_phone(
    home: dict[str, Any], driver: Any
) -> None:
    repo = home["repo"]
    # a line a worker wrote to be HTML: shown as text, never parsed
    app = "def f(x):\\n    return x\\n# <img src=x onerror=document.title=1>\\n"
    worker(home, "w1", "add app", {"app.py": app})
    worker(home, "w2", "edit the README", {"README": "hello\\nworker two\\n"})
    worker(home, "w3", "add notes", {"notes.txt": "notes\\n"})
    driver.get(home["url"])
    _click(driver, "#show-all")  # ended workers are listed with their branch

    # desktop: a line comment by clicking it, one on the whole change, sent, then landed
    open_review(driver, "w1")
    assert "verify: none set" in _text(driver, "#review-head")
    added = _text(driver, '#review .rv-l.add[data-file="app.py"][data-line="2"]')
    assert "return x" in added
    assert "<img src=x" in _text(driver, '#review .rv-l[data-file="app.py"][data-line="3"]')
    assert driver.execute_script("return document.querySelectorAll('#review img').length") == 0
    comment_line(driver, "app.py", 2, "return x + 1 instead")
    driver.find_element("css selector", "#review-all-text").send_keys("and add a test")
    _click(driver, "#review-all button[type=submit]")
    wait_until(lambda: "Send 2 comment(s)" in _text(driver, "#review-send"), 20, "two drafted")
    size(driver, DESKTOP, "review-desktop")
    dark = [{"name": "prefers-color-scheme", "value": "dark"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": dark})
    size(driver, DESKTOP, "review-desktop-dark")
    _click(driver, "#review-send")
    wait_until(lambda: "and add a test" in told(home), 30, "w1 resumed with the round")
    assert "app.py:2: return x + 1 instead" in told(home)
    wait_until(lambda: "web: sent review round 1 to w1" in journal(home), 10, "send journaled")
    tip = git(repo, "rev-parse", "looop/w1")
    _click(driver, "#review-land")
    alert = driver.switch_to.alert
    assert "Land worker w1" in alert.text
    alert.accept()
    wait_until(lambda: git(repo, "rev-parse", "main") == tip, 30, "w1 landed (fast-forward)")
    wait_until(lambda: "user (web): landed worker w1" in journal(home), 10, "landing journaled")
    land = driver.find_element("css selector", "#review-land")
    wait_until(lambda: not land.is_enabled(), 20, "Land off once it landed")
    assert "nothing left to land" in _text(driver, "#review-head")
    driver.find_element("css selector", "#review-close").click()

    # phone: w2 commented and sent, then a merge conflicts with w1's README line
    emulate(driver, PHONE)
    open_review(driver, "w2")
    # a comment being written outlives a redraw of the panel (a push, a landing's reload)
    _click(driver, '#review .rv-l[data-file="README"][data-line="2"]')
    driver.find_element("css selector", "#review .rv-at textarea").send_keys("half a thought")
    driver.execute_script("return loadReview()")
    kept = driver.find_element("css selector", "#review .rv-at textarea").get_attribute("value")
    assert kept == "half a thought", kept
    _click(driver, "#review .rv-at button[type=button]")  # Cancel
    comment_line(driver, "README", 2, "say which worker")
    size(driver, PHONE, "review-phone")
    _click(driver, "#review-send")
    wait_until(lambda: "say which worker" in told(home), 30, "w2 resumed with the round")
    (repo / "README").write_text("hello\nthe user's line\n")
    git(repo, "commit", "-qam", "a conflicting line")
    old = git(repo, "rev-parse", "main")
    driver.find_element("css selector", "#review-mode option[value=merge]").click()
    _click(driver, "#review-land")
    driver.switch_to.alert.accept()
    wait_until(lambda: "conflicts with main" in _text(driver, "#review-conflict"), 20, "conflict")
    assert "README" in _text(driver, "#review-conflict-text")
    size(driver, PHONE, "review-phone-conflict")
    assert git(repo, "rev-parse", "main") == old
    _click(driver, "#review-sendback")
    wait_until(lambda: "merge main into your branch" in told(home), 30, "sent back")
    wait_until(lambda: "round 2" in journal(home), 10, "the second round journaled")
    driver.find_element("css selector", "#review-close").click()

    # phone: w3 (no conflict) approved and landed as a merge commit
    open_review(driver, "w3")
    driver.find_element("css selector", "#review-mode option[value=merge]").click()
    _click(driver, "#review-land")
    driver.switch_to.alert.accept()
    w3 = git(repo, "rev-parse", "looop/w3")
    wait_until(lambda: rev(repo, "main^2") == w3, 30, "w3 merged into main")
    assert rev(repo, "main^1") == old
    wait_until(lambda: "user (web): landed worker w3" in journal(home), 10, "journaled")
    assert "merge commit" in journal(home).splitlines()[-1]


@pytest.mark.timeout(180)
def test_a_proposed_landing_is_declined_from_the_review_panel(
    home: dict[str, Any], driver: Any
) -> None:
    """The decider proposes landing w4; Decline (confirmed) answers its ask "no", as `looop
    answer ASK no` does: nothing lands, the proposal leaves the panel, journaled as the web's."""
    repo = home["repo"]
    worker(home, "w4", "add todo", {"todo.txt": "one\\n"})
    c = ctx_for(home["env"], SystemClock(), None)  # the home the web serves
    move = {"action": "propose_land", "id": "w4", "reason": "verify passed"}
    execute(c, c.knobs(), decision_from_obj(move))
    before = git(repo, "rev-parse", "main")
    driver.get(home["url"])
    _click(driver, "#show-all")
    open_review(driver, "w4")
    wait_until(lambda: "w4-1" in _text(driver, "#review-head"), 20, "the proposal shown")
    decline = driver.find_element("css selector", "#review-decline")
    assert decline.is_displayed()
    size(driver, PHONE, "review-phone-proposal")
    _click(driver, "#review-decline")
    alert = driver.switch_to.alert
    assert "Decline" in alert.text and "w4-1" in alert.text
    alert.accept()
    answers = home["data"] / "answers" / "w4-1.json"
    wait_until(answers.exists, 20, "the ask answered")
    assert json.loads(answers.read_text())["answer"] == "no"
    wait_until(lambda: "w4-1" not in _text(driver, "#review-head"), 20, "the proposal gone")
    assert not driver.find_element("css selector", "#review-decline").is_displayed()
    assert "web: answered w4-1: no" in said(home["data"])
    assert git(repo, "rev-parse", "main") == before  # nothing landed
    assert rev(repo, "looop/w4")  # the worker's branch is kept
