"""v1.0's mailbox case replayed: a corrupt answers/<id>.json is not an answer. Its ask stays
pending (the human must see it still waits), a plain answer is refused naming the broken file,
and `--force` repairs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.home.boxfolder import pending_asks
from looop.human import mailbox
from looop.human.mailbox import AskAnswered, AskError


@pytest.mark.parametrize(
    "broken",
    [b"{truncat", b"", b"[1, 2]", b'{"v": 1, "id": "w-1"}', b'{"answer": 42}'],
    ids=["truncated", "empty", "not-an-object", "no-answer-field", "answer-not-text"],
)
def test_a_corrupt_answer_keeps_its_ask_pending_until_forced(tmp_path: Path, broken: bytes) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    aid = str(mailbox.new_ask(asks, answers, "w", "ok?", None, [], 1.0)["id"])
    answers.mkdir()
    (answers / f"{aid}.json").write_bytes(broken)

    assert [r["id"] for r in mailbox.pending(asks, answers)] == [aid]
    assert [r["id"] for r in pending_asks(str(tmp_path))] == [aid]  # the fast `status` path
    # refused as data: the waiting worker reads no answer yet, never a guess, and waits on
    assert mailbox.read_answer(asks, answers, aid) is None
    with pytest.raises(AskAnswered, match=rf"unreadable answer \(answers/{aid}.json\).*--force"):
        mailbox.answer(asks, answers, aid, "yes", 2.0)

    mailbox.answer(asks, answers, aid, "repaired", 3.0, force=True)
    assert mailbox.pending(asks, answers) == []
    assert mailbox.read_answer(asks, answers, aid) == "repaired"


def test_a_readable_answer_still_hides_its_ask(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    aid = str(mailbox.new_ask(asks, answers, "w", "ok?", None, [], 1.0)["id"])
    mailbox.answer(asks, answers, aid, "yes", 2.0)
    assert mailbox.pending(asks, answers) == []
    with pytest.raises(AskAnswered, match="already answered — add --force"):
        mailbox.answer(asks, answers, aid, "no", 3.0)


def test_a_corrupt_answer_to_an_ask_gone_is_said_not_waited_on(tmp_path: Path) -> None:
    asks, answers = tmp_path / "asks", tmp_path / "answers"
    aid = str(mailbox.new_ask(asks, answers, "w", "ok?", None, [], 1.0)["id"])
    answers.mkdir()
    (answers / f"{aid}.json").write_bytes(b"{truncat")
    (asks / f"{aid}.json").unlink()
    with pytest.raises(AskError, match="disappeared before it was answered"):
        mailbox.read_answer(asks, answers, aid)
