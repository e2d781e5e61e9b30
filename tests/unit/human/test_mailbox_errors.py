"""mailbox.answer's refusals are typed (the web maps each to a status) and stay AskErrors
saying what they always said (the CLI prints them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.human import mailbox
from looop.human.mailbox import AskAnswered, AskArchived, AskError, NoSuchAsk, NotAnOption


def test_each_refusal_has_its_type(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    aid = str(mailbox.new_ask(asks, answers, "w1", "ship?", None, ["yes", "no"], 0.0)["id"])
    with pytest.raises(NotAnOption, match="takes one of: yes, no"):
        mailbox.answer(asks, answers, aid, "maybe", 1.0)
    mailbox.answer(asks, answers, aid, "YES", 1.0)
    with pytest.raises(AskAnswered, match="already answered — add --force"):
        mailbox.answer(asks, answers, aid, "no", 2.0)
    mailbox.archive(asks, aid)
    with pytest.raises(AskAnswered, match="no pending ask"):
        mailbox.answer(asks, answers, aid, "no", 3.0)
    other = str(mailbox.new_ask(asks, answers, "w1", "again?", None, [], 0.0)["id"])
    mailbox.archive(asks, other)
    with pytest.raises(AskArchived, match="no pending ask"):
        mailbox.answer(asks, answers, other, "x", 4.0)
    for missing in ("w1-99", "../x"):
        with pytest.raises(NoSuchAsk) as got:
            mailbox.answer(asks, answers, missing, "x", 5.0)
        assert type(got.value) is NoSuchAsk
    assert all(issubclass(t, AskError) for t in (AskAnswered, NoSuchAsk, NotAnOption))


def test_an_ask_is_never_seen_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A beat's probe reads asks/ while a worker asks: the ask's file appears only whole (an
    empty or half one read as an ask of worker `?`, and the asker as busy)."""
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    asks.mkdir()
    answers.mkdir()
    seen: list[list[str]] = []
    real_fsync = mailbox.os.fsync

    def fsync(fd: int) -> None:  # the content is being made durable: nothing visible yet
        seen.append(sorted(p.name for p in asks.glob("*.json")))
        real_fsync(fd)

    monkeypatch.setattr(mailbox.os, "fsync", fsync)
    rec = mailbox.new_ask(asks, answers, "w1", "ship?", None, [], 0)
    assert seen == [[]]
    assert [p.name for p in asks.iterdir()] == [f"{rec['id']}.json"]  # no temp file left
    assert mailbox.pending(asks, answers)[0]["worker"] == "w1"


def test_one_worker_keeps_at_most_three_asks_pending(tmp_path: Path) -> None:
    """One worker filing 300 asks filled the needs-you queue: the fourth pending is refused in
    one line; an answered one frees its place, and another worker asks as before."""
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    ids = [str(mailbox.new_ask(asks, answers, "w1", q, None, [], 0.0)["id"]) for q in "abc"]
    with pytest.raises(AskError) as got:
        mailbox.new_ask(asks, answers, "w1", "q4?", None, [], 0.0)
    said = str(got.value)
    assert "\n" not in said and "w1 has 3 asks waiting" in said and ids[0] in said
    assert len(mailbox.pending(asks, answers)) == 3
    mailbox.new_ask(asks, answers, "w1-x", "another worker's?", None, [], 0.0)
    mailbox.answer(asks, answers, ids[1], "yes", 1.0)
    mailbox.new_ask(asks, answers, "w1", "q5?", None, [], 2.0)  # an answer freed a place
