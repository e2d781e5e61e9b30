"""`looop watch` against real sessions, driven through Textual's Pilot (no real terminal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from looop.act.moves import far as reach_far
from looop.core.context import Ctx
from looop.sessions.client import send, wait
from looop.sessions.spawner import spawn
from looop.tui.app import WatchApp
from looop.workers.backend import LocalBackend
from tests.clocks import FixedClock
from tests.helpers import Cli, kill_sessions

SIZE = (120, 40)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


@pytest.fixture
def root(ctx: Ctx) -> Iterator[Path]:
    yield ctx.paths.data
    kill_sessions(ctx.paths.data)


def _sh(root: Path, env: dict[str, str], sid: str, script: str) -> None:
    spawn(root, sid, ["/bin/sh", "-c", script], cwd=root, env=env, size=(80, 24))


def pane(app: WatchApp) -> str:
    """What the main pane paints right now, row by row."""
    term = app.term
    return "\n".join(
        "".join(seg.text for seg in term.render_line(y)) for y in range(term.size.height)
    )


def table_ids(app: WatchApp) -> list[str]:
    return [str(row.key.value) for row in app.table.ordered_rows]


def status(app: WatchApp) -> str:
    return " ".join(
        str(app.query_one(f"#status-{side}", Static).content) for side in ("left", "right")
    )


async def until(
    pilot: Pilot[None], cond: Callable[[], bool], what: str, limit: float = 10.0
) -> None:
    """Let the app run until `cond` holds (bounded), never a blind sleep."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {limit}s")
        await pilot.pause(0.05)


@pytest.mark.timeout(40)
def test_watch_shows_selects_follows_and_quits(ctx: Ctx, root: Path, env: dict[str, str]) -> None:
    _sh(root, env, "gone", "echo done-and-gone")
    assert wait(root, "gone", 10.0, FixedClock()) == 0
    _sh(root, env, "pulse", r"printf 'pulse \033[1;32mbeat\033[0m\n'; exec cat")
    _sh(root, env, "w1", r"printf '\033[31mworker one red\033[0m\n'; exec cat")

    async def scenario() -> None:
        app = WatchApp(ctx)
        async with app.run_test(size=SIZE) as pilot:
            # the pulse is the default and comes first; a dead worker stays out of "living"
            await until(pilot, lambda: "pulse beat" in pane(app), "the pulse's screen")
            assert table_ids(app) == ["pulse", "w1"]
            assert "▸ pulse" in status(app) and "80×24" in status(app)
            beat = [
                seg
                for y in range(app.term.size.height)
                for seg in app.term.render_line(y)
                if "beat" in seg.text
            ]
            assert beat and beat[0].style is not None and beat[0].style.bold
            assert beat[0].style.color is not None and beat[0].style.color.number == 2

            await pilot.press("down")
            await until(pilot, lambda: "worker one red" in pane(app), "w1's screen")
            assert "pulse beat" not in pane(app) and "▸ w1" in status(app)

            send(root, "w1", "fresh output")  # the log grows: the pane follows
            await until(pilot, lambda: pane(app).count("fresh output") == 2, "new output")

            await pilot.press("tab")
            await until(pilot, lambda: "gone" in table_ids(app), "the dead worker listed")
            assert table_ids(app) == ["pulse", "gone", "w1"]  # by uptime, pulse first
            # rebuilding the table did not move the selection
            assert "▸ w1" in status(app) and "fresh output" in pane(app)
            await pilot.press("tab")
            await until(pilot, lambda: "gone" not in table_ids(app), "living only again")

            await pilot.press("up")
            await until(pilot, lambda: "pulse beat" in pane(app), "back to the pulse")
            await pilot.click("#fleet", offset=(4, 2))  # header, pulse, then w1's row
            await until(pilot, lambda: "worker one red" in pane(app), "a clicked row")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "q quitting")

    asyncio.run(scenario())


@pytest.mark.timeout(40)
def test_watch_id_scrollback_and_empty_state(ctx: Ctx, root: Path, env: dict[str, str]) -> None:
    async def empty() -> None:
        app = WatchApp(ctx)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "no sessions" in pane(app), "the empty state")
            assert "looop up" in pane(app) and "looop worker start" in pane(app)
            # it keeps refreshing: a session that starts now shows up by itself
            _sh(root, env, "late", "seq 1 200; echo the-end; exec cat")
            await until(pilot, lambda: "the-end" in pane(app), "the late session")
            assert table_ids(app) == ["late"]
            await pilot.press("ctrl+c")
            await until(pilot, lambda: not app.is_running, "ctrl+c quitting")

    asyncio.run(empty())
    _sh(root, env, "other", "echo other-session; exec cat")

    async def scroll() -> None:
        app = WatchApp(ctx, "late")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "the-end" in pane(app), "the chosen session")
            assert "other-session" not in pane(app)
            # 200 lines through a 24-row screen: the rest is scrollback
            assert "\n1 " not in "\n" + pane(app)
            await pilot.press("pageup")
            await until(pilot, lambda: "the-end" not in pane(app), "a page up")
            assert "scrolled" in status(app)
            await pilot.press("home")
            await until(pilot, lambda: pane(app).startswith("1 "), "the top of scrollback")
            await pilot.press("ctrl+n")
            await until(pilot, lambda: pane(app).startswith("2 "), "one line down")
            await pilot.press("end")
            await until(pilot, lambda: "the-end" in pane(app), "following again")

    asyncio.run(scroll())


@pytest.mark.timeout(30)
def test_watch_cli_errors_are_one_line(ctx: Ctx, root: Path, env: dict[str, str], cli: Cli) -> None:
    assert cli.data == root
    code, out, err = cli("watch", "nope")
    assert code == 1 and out == "" and err.count("\n") == 1 and "nope" in err
    _sh(root, env, "w1", "echo hi; exec cat")
    code, out, err = cli("watch", "w1")  # stdout is not a TTY here
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "terminal" in err and "looop shot" in err and "looop log -f" in err


@pytest.mark.timeout(40)
def test_watch_opens_on_what_a_tall_session_shows(
    ctx: Ctx, root: Path, env: dict[str, str]
) -> None:
    tall = (100, 60)  # 60 rows against a ~32-row pane
    # the text sits at the top, the bottom rows are blank
    spawn(root, "tall", ["/bin/sh", "-c", "echo top-line; exec cat"], cwd=root, env=env, size=tall)
    # scrollback, then a cleared screen with one line at its top
    script = r"seq 1 100; printf '\033[H\033[2J'; echo after-clear; exec cat"
    spawn(root, "cleared", ["/bin/sh", "-c", script], cwd=root, env=env, size=tall)

    async def scenario() -> None:
        app = WatchApp(ctx, "tall")
        async with app.run_test(size=SIZE) as pilot:
            assert app.term.size.height < 60
            await until(pilot, lambda: "top-line" in pane(app), "the tall session's text")
            assert "100×60" in status(app)
            send(root, "tall", "typed-later")  # following still works from there
            await until(pilot, lambda: "typed-later" in pane(app), "new output")
            assert "top-line" in pane(app)
            await pilot.press("home")
            await pilot.press("end")
            await until(pilot, lambda: "typed-later" in pane(app), "End back on the text")
            await pilot.press("down")
            await until(pilot, lambda: "after-clear" in pane(app), "the cleared session")
            assert "after-clear" in pane(app).splitlines()[0]
            await pilot.press("home")
            await until(pilot, lambda: pane(app).startswith("1"), "its scrollback, kept")

    asyncio.run(scenario())


@pytest.mark.timeout(40)
def test_a_local_screen_is_read_through_this_machines_backend(
    ctx: Ctx, root: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pane's bytes come from the worker's Backend (`output`), not from a log file the
    view opens itself: what the engine answers is what the pane shows."""
    _sh(root, env, "w1", "echo from-the-disk; exec cat")
    asked: list[tuple[str, int | None]] = []

    class Engine(LocalBackend):
        def output(self, sid: str, since: int | None, most: int) -> tuple[int, int, bytes]:
            asked.append((sid, since))
            start, end, data = super().output(sid, since, most)
            return start, end, data.replace(b"from-the-disk", b"from-the-back")

    monkeypatch.setattr(reach_far, "here", lambda c: Engine(c.paths.data, c.clock, c))

    async def scenario() -> None:
        app = WatchApp(ctx, "w1")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "from-the-back" in pane(app), "the engine's bytes")
            assert "from-the-disk" not in pane(app)
            assert asked[0] == ("w1", None) and all(sid == "w1" for sid, _ in asked)
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "q quitting")

    asyncio.run(scenario())
