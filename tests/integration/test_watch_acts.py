"""`looop watch` you can work from: one key acts on real sessions through the dashboard's own
actions (the executor, the mailbox), journaled as `watch:`, with a confirm before what cannot
be taken back; `?` lists every key. Driven through Textual's Pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

from looop.core.context import Ctx
from looop.human.mailbox import new_ask
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session
from looop.tui.app import WatchApp
from looop.tui.modals import Confirm, KeysHelp, Line
from looop.web.actions import Acting
from tests.helpers import kill_sessions, said
from tests.integration.test_watch import SIZE, pane, status, until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def root(ctx: Ctx) -> Iterator[Path]:
    yield ctx.paths.data
    kill_sessions(ctx.paths.data)


def _journal(ctx: Ctx) -> str:
    p = ctx.paths.journal
    return p.read_text() if p.exists() else ""


def _cat(root: Path, sid: str) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    spawn(root, sid, ["cat"], cwd=root, env=env, size=(80, 24))


def test_keys_answer_send_interrupt_and_kill_journaled(ctx: Ctx, root: Path) -> None:
    _cat(root, "w1")
    _cat(root, "w2")

    async def scenario() -> None:
        app = WatchApp(ctx, "w1", acts=Acting(ctx, "watch"))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "▸ w1" in status(app), "w1 selected")

            # ? lists every key; its letters are its own (q closes it, not the app)
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, KeysHelp), "the key list")
            listed = str(app.screen.query_one("#keys-all", Static).content)
            for word in ("answer", "Ctrl-C", "kill", "pause", "follow", "quit"):
                assert word in listed, word
            await pilot.press("q")
            await until(pilot, lambda: not isinstance(app.screen, KeysHelp), "the list closed")
            assert app.is_running

            # s: a line typed into w1 (letters that are keys here go into the line)
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, Line), "the line to type")
            await pilot.press(*"ask", "space", *"quickly")
            await pilot.press("enter")
            await until(pilot, lambda: pane(app).count("ask quickly") >= 2, "cat echoing it")
            assert "watch: steer w1 · ask quickly" in _journal(ctx)

            # a: the selected worker's ask, typed, then confirmed (n first: nothing sent)
            p = ctx.paths
            aid = str(new_ask(p.asks, p.answers, "w1", "Drop the table?", None, ["yes", "no"],
                              ctx.clock.now())["id"])  # fmt: skip
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, Line), "the ask's line")
            assert "Drop the table?" in str(app.screen.query_one("#title", Static).content)
            await pilot.press(*"yes", "enter")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirm")
            await pilot.press("n")
            await until(pilot, lambda: not isinstance(app.screen, Confirm), "declined")
            assert not (p.answers / f"{aid}.json").exists()
            await pilot.press("a", *"yes", "enter")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirm again")
            await pilot.press("y")
            await until(pilot, lambda: (p.answers / f"{aid}.json").exists(), "the answer")
            await until(
                pilot, lambda: f"watch: answered {aid}: yes" in said(ctx.paths.data), "said"
            )

            # c: Ctrl-C, confirmed: cat ends on it
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "Ctrl-C's confirm")
            await pilot.press("y")
            await until(pilot, lambda: not get_session(root, "w1").alive, "cat interrupted")
            assert "watch: key w1 · C-c" in _journal(ctx)

            # k: kill w2, refused once (Esc), then confirmed
            await until(pilot, lambda: app.acting is None, "the last act done")
            app.select("w2")
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "kill's confirm")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, Confirm), "kill declined")
            assert get_session(root, "w2").alive and "kill-worker" not in _journal(ctx)
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "kill's confirm again")
            await pilot.press("y")
            await until(pilot, lambda: not get_session(root, "w2").alive, "w2 killed")
            await until(pilot, lambda: "watch: kill-worker w2" in _journal(ctx), "journaled")

            # a dead worker takes no keys: said, nothing journaled
            before = _journal(ctx)
            await pilot.press("k")
            await pilot.pause(0.1)
            assert not isinstance(app.screen, Confirm) and _journal(ctx) == before

            # p with no pulse offers to resume it; declined, nothing runs
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, Confirm), "resume's confirm")
            assert "Resume" in str(app.screen.query_one("#question", Static).content)
            await pilot.press("n")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "q quitting")
        assert _journal(ctx) == before

    asyncio.run(scenario())


def test_a_view_without_acts_says_so_and_changes_nothing(ctx: Ctx, root: Path) -> None:
    _cat(root, "w1")

    async def scenario() -> None:
        app = WatchApp(ctx, "w1")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "▸ w1" in status(app), "w1 selected")
            for key in ("s", "k", "c", "p", "a"):
                await pilot.press(key)
                assert not isinstance(app.screen, (Confirm, Line)), key
            await pilot.press("q")

    asyncio.run(scenario())
    assert get_session(root, "w1").alive and _journal(ctx) == ""
