"""`looop watch`'s review pane on real git and real worker sessions, driven through Textual's
Pilot: r opens the selected worker's change (stat and coloured hunks, scrollable), c comments
on the line under the cursor, w on the whole change, s sends the round (confirmed; the ended
worker resumed with it), l lands it (confirmed; journaled as the user's, from watch); a
conflict is said in one line and sent back as a comment once confirmed."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from looop.core.context import Ctx
from looop.sessions.client import wait
from looop.tui.app import WatchApp
from looop.tui.modals import Confirm, Line
from looop.tui.review import ReviewScreen
from looop.web.actions import Acting
from tests.helpers import kill_sessions
from tests.integration.test_watch import SIZE, until
from tests.integration.workerchange import LATER, commits_later, git, repo, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["repo", "wctx"]  # the fixtures this module's tests take


def rounds(c: Ctx, wid: str) -> list[dict[str, Any]]:
    path = c.paths.data / "reviews" / f"{wid}.json"
    return json.loads(path.read_text())["rounds"] if path.exists() else []


def journal(c: Ctx) -> str:
    return c.paths.journal.read_text() if c.paths.journal.exists() else ""


def shown(app: WatchApp) -> list[str]:
    lines = app.screen.query_one("#review-list", OptionList)
    return [str(lines.get_option_at_index(i).prompt) for i in range(lines.option_count)]


async def to_line(pilot: Pilot[None], app: WatchApp, text: str) -> None:
    """The cursor moved down, as a user moves it, to the first line holding `text`."""
    target = next(i for i, ln in enumerate(shown(app)) if text in ln)
    lines = app.screen.query_one("#review-list", OptionList)
    while lines.highlighted != target:
        await pilot.press("down" if (lines.highlighted or 0) < target else "up")


async def type_line(pilot: Pilot[None], app: WatchApp, text: str) -> None:
    await until(pilot, lambda: isinstance(app.screen, Line), "the line to type")
    await pilot.press(*[("space" if ch == " " else ch) for ch in text], "enter")


async def confirm(pilot: Pilot[None], app: WatchApp, said: str) -> None:
    await until(pilot, lambda: isinstance(app.screen, Confirm), f"the confirm ({said})")
    assert said in str(app.screen.query_one("#question").render())
    await pilot.press("y")


def test_review_comment_send_and_land_from_watch(wctx: Ctx, repo: Path, tmp_path: Path) -> None:
    start(wctx, tmp_path, "w1", repo)
    tip = git(repo, "rev-parse", "looop/w1").strip()

    async def scenario() -> None:
        app = WatchApp(wctx, "w1", show_all=True, acts=Acting(wctx, "watch"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review pane")
            text = "\n".join(shown(app))
            assert "── app.py  +2 -0 (added)" in text and "── README  +1 -0 (modified)" in text
            assert "    2 +    return x" in text and "verify: none set" in text
            assert "I added f; it returns x." in text  # its report

            # c on a line of the tip: a comment there; w: one on the whole change
            await to_line(pilot, app, "+    return x")
            await pilot.press("c")
            await type_line(pilot, app, "return x + 1")
            await until(pilot, lambda: len(rounds(wctx, "w1")) == 1, "the comment drafted")
            await until(pilot, lambda: "↳ return x + 1" in "\n".join(shown(app)), "shown")
            await until(pilot, lambda: app.acting is None, "done")
            await pilot.press("w")
            await type_line(pilot, app, "add a test")
            await until(
                pilot, lambda: len(rounds(wctx, "w1")[0]["comments"]) == 2, "the second comment"
            )
            (line, whole) = rounds(wctx, "w1")[0]["comments"]
            assert (line["file"], line["line"], line["text"]) == ("app.py", 2, "return x + 1")
            assert (whole["file"], whole["text"]) == ("", "add a test")

            # s: sent once confirmed (n first: nothing sent)
            await until(pilot, lambda: app.acting is None, "done")
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "send's confirm")
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "declined")
            assert not rounds(wctx, "w1")[0]["sent"]
            await pilot.press("s")
            await confirm(pilot, app, "Send 2 comment(s) to w1")
            await until(pilot, lambda: bool(rounds(wctx, "w1")[0]["sent"]), "the round sent")
            assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0  # the resumed run writes it
            told = (tmp_path / "resumed.txt").read_text()
            assert "app.py:2: return x + 1" in told and "the whole change: add a test" in told

            # l: landed as configured, once confirmed; journaled as the user's, from watch
            await until(pilot, lambda: app.acting is None, "done")
            await pilot.press("l")
            await type_line(pilot, app, "")
            await confirm(pilot, app, "Land worker w1's change (as configured)")
            await until(pilot, lambda: git(repo, "rev-parse", "main").strip() == tip, "landed")
            await until(pilot, lambda: "user (watch): landed worker w1" in journal(wctx), "j")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ReviewScreen), "closed")
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        kill_sessions(wctx.paths.data)


def test_a_conflict_is_said_and_sent_back_once_confirmed(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    (repo / "README").write_text("hello\nthe user's line\n")
    git(repo, "commit", "-qam", "a conflicting line")
    old = git(repo, "rev-parse", "main")

    async def scenario() -> None:
        app = WatchApp(wctx, "w2", show_all=True, acts=Acting(wctx, "watch"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review pane")
            await pilot.press("l")
            await type_line(pilot, app, "merge")
            await confirm(pilot, app, "(merge)")
            await confirm(pilot, app, "merge main into your branch: conflicts in README")
            await until(pilot, lambda: bool(rounds(wctx, "w2")), "sent back")
            await until(pilot, lambda: bool(rounds(wctx, "w2")[0]["sent"]), "sent")
            assert git(repo, "rev-parse", "main") == old  # nothing landed
            assert wait(wctx.paths.data, "w2", 30, wctx.clock) == 0  # the resumed run writes it
            told = (tmp_path / "resumed.txt").read_text()
            assert "the whole change: merge main into your branch" in told
            await pilot.press("q")  # q closes the pane, not the app
            await until(pilot, lambda: not isinstance(app.screen, ReviewScreen), "closed")
            assert app.is_running
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        kill_sessions(wctx.paths.data)


def test_closing_the_pane_while_it_lands_leaves_the_landing_to_finish(
    wctx: Ctx, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user closes the review pane while a landing runs: the landing still ends and is
    said, and nothing redraws the closed pane (no error from the action's thread)."""
    start(wctx, tmp_path, "w3", repo)
    tip = git(repo, "rev-parse", "looop/w3").strip()
    release, broke = threading.Event(), []
    land = Acting.land

    def slow_land(self: Acting, sid: str, mode: str, at: dict[str, str]) -> str:
        assert release.wait(30), "the test never let the landing go on"
        return land(self, sid, mode, at)

    monkeypatch.setattr(Acting, "land", slow_land)
    monkeypatch.setattr(threading, "excepthook", lambda args: broke.append(args.exc_value))

    async def scenario() -> None:
        app = WatchApp(wctx, "w3", show_all=True, acts=Acting(wctx, "watch"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review pane")
            await pilot.press("l")
            await type_line(pilot, app, "")
            await confirm(pilot, app, "Land worker w3's change (as configured)")
            await until(pilot, lambda: app.acting is not None, "landing")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ReviewScreen), "closed")
            release.set()
            await until(pilot, lambda: app.acting is None, "the landing said")
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        kill_sessions(wctx.paths.data)
    assert git(repo, "rev-parse", "main").strip() == tip
    assert broke == []


def test_land_sends_the_tip_the_pane_shows_and_a_later_commit_is_refused(
    wctx: Ctx, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(wctx, tmp_path, "w4", repo, tail=LATER.format(go=tmp_path / "go", done=tmp_path / "done"))
    drawn = git(repo, "rev-parse", "looop/w4").strip()
    main = git(repo, "rev-parse", "main")
    land, said = Acting.land, []

    def heard(self: Acting, sid: str, mode: str, at: dict[str, str]) -> str:
        try:
            return land(self, sid, mode, at)
        except Exception as e:
            said.append((at, str(e)))
            raise

    monkeypatch.setattr(Acting, "land", heard)

    async def scenario() -> None:
        app = WatchApp(wctx, "w4", show_all=True, acts=Acting(wctx, "watch"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review pane")
            await until(pilot, lambda: "── app.py" in "\n".join(shown(app)), "the change")
            commits_later(tmp_path)  # after the pane drew it
            await pilot.press("l")
            await type_line(pilot, app, "")
            await confirm(pilot, app, "Land worker w4's change")
            await until(pilot, lambda: bool(said), "the landing refused")
            await until(pilot, lambda: app.acting is None, "said")
            await pilot.press("escape")
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        kill_sessions(wctx.paths.data)
    ((at, line),) = said
    assert at == {"": drawn}
    assert "has 1 new commit(s) since the review you approved" in line
    assert git(repo, "rev-parse", "main") == main and not (repo / "backdoor.sh").exists()
