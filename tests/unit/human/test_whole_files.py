"""An answer, an ask and a tell are files another process polls for: each appears whole or not
at all. Every byte is written before the name exists; the reader never sees it half written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from looop.home import store
from looop.human import mailbox, tellbox


def _watch_writes(monkeypatch: pytest.MonkeyPatch, target: Callable[[], Path]) -> list[bool]:
    """Each os.write in store records whether the final name already existed at that moment."""
    seen: list[bool] = []
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        seen.append(target().exists())
        return real(fd, data)

    monkeypatch.setattr(store.os, "write", write)
    return seen


def test_an_answer_appears_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    aid = str(mailbox.new_ask(asks, answers, "w1", "tag it?", None, [], 0.0)["id"])
    seen = _watch_writes(monkeypatch, lambda: answers / f"{aid}.json")
    mailbox.answer(asks, answers, aid, "yes " * 5000, 1.0)
    assert seen and not any(seen), "the answer's name existed while its text was being written"
    assert mailbox.read_answer(asks, answers, aid) == ("yes " * 5000)
    with pytest.raises(mailbox.AskAnswered):  # the name is still taken only once
        mailbox.answer(asks, answers, aid, "no", 2.0)
    assert mailbox.read_answer(asks, answers, aid) == ("yes " * 5000)
    assert sorted(p.name for p in answers.iterdir()) == [f"{aid}.json"]  # no temp left


def test_an_ask_and_a_tell_appear_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asks, answers, tells = tmp_path / "asks", tmp_path / "answers", tmp_path / "tells"
    seen = _watch_writes(monkeypatch, lambda: asks / "w1-1.json")
    assert mailbox.new_ask(asks, answers, "w1", "ship?", None, [], 0.0)["id"] == "w1-1"
    assert seen and not any(seen)
    seen = _watch_writes(monkeypatch, lambda: tells / "w1-1.json")
    assert tellbox.new_tell(tells, "w1", "use staging", 0.0) == "w1-1"
    assert seen and not any(seen)
    assert tellbox.new_tell(tells, "w1", "then test", 0.0) == "w1-2"  # next free id
    assert [m for m in tellbox.take_tells(tells, "w1")] == ["use staging", "then test"]
    assert not [p for p in tells.iterdir() if p.name.startswith(".")]
