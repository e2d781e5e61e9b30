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
