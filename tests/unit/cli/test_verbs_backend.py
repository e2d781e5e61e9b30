"""The session verbs `send`, `key`, `shot` and `wait <id>` drive a worker here through the
same `Backend` interface a worker away is driven through, not a branch of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from looop.act.moves import far
from looop.cli import sessions
from looop.cli.root import cli
from looop.core.context import Ctx
from looop.home.clock import Clock
from tests.fakebackend import FakeBackend


@pytest.mark.parametrize(
    ("argv", "call", "code", "out"),
    [
        (["send", "w1", "hi", "there"], ("send", "w1", "hi there\r", False), 0, ""),
        (["send", "--json", "-n", "w1", "x"], ("send", "w1", "x", False), 0, '"sent": 1'),
        (["key", "w1", "C-c", "Enter"], ("key", "w1", ["C-c", "Enter"]), 0, ""),
        (["shot", "w1"], ("screen", "w1", "plain", True), 0, "fake screen"),
        (["wait", "w1", "--timeout", "5s"], ("wait", "w1", 5.0), 3, ""),
    ],
)
def test_a_session_verb_drives_a_worker_here_through_its_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    call: tuple[Any, ...],
    code: int,
    out: str,
) -> None:
    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    way = FakeBackend()
    asked: list[str] = []

    def this_machine(data: str, clock: Clock) -> FakeBackend:
        asked.append(data)
        return way

    monkeypatch.setattr(sessions, "LocalBackend", this_machine)
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert (res.exit_code, way.calls) == (code, [call]), res.output
    assert asked == [str(tmp_path / "data")]
    assert out in res.output


def test_the_web_apis_typing_without_enter_reaches_a_worker_here_through_its_backend(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    from looop.web import actions, reads

    way = FakeBackend()
    monkeypatch.setattr(reads.reach_far, "here", lambda c: way)
    monkeypatch.setattr(actions, "_live", lambda c, sid: None)  # a live worker w1
    assert actions.send_text(ctx, "w1", {"text": "half", "enter": False}) == {"ok": True}
    assert way.calls == [("send", "w1", "half", False)]
    assert "typed into w1 · half" in ctx.paths.journal.read_text()


def test_watch_asks_the_workers_backend_whether_it_knows_the_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`looop watch ID` learns an id is known from its worker's Backend (the one lookup,
    far.backend_for), before it needs a terminal; an unknown one is its one line."""
    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    way = FakeBackend()
    monkeypatch.setattr(far, "here", lambda ctx: way)
    res = CliRunner().invoke(cli, ["watch", "w1"])
    assert way.calls == [("known", "w1")]
    assert "watch needs a terminal" in str(res.exception), res.output
    monkeypatch.undo()
    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(cli, ["watch", "nobody"])
    said = str(res.exception)
    assert "nobody" in said and "terminal" not in said and "\n" not in said
