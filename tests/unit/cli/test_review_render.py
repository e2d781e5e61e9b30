"""How `looop review` draws a Review: coloured only for a terminal, the stat before the hunks,
the rounds with what followed them, and nothing a worker wrote acts on the terminal."""

from __future__ import annotations

from looop.cli import review as cli
from looop.workers.review import Review, Verify
from looop.workers.reviewgit import Commit, FileChange, Hunk
from looop.workers.reviewrounds import Comment, Round

ESC = "\x1b"


def render(r: Review, colour: bool) -> str:
    return "".join(cli.render(r, colour))  # the page's parts, as a pipe reads them


def _review(**kw: object) -> Review:
    hunk = Hunk("@@ -1 +1,2 @@", 1, 2, (" hello", f"+evil {ESC}]52;c;aGk=\a"))
    base: dict[str, object] = {
        "wid": "w1",
        "repo": "/r",
        "branch": "looop/w1",
        "base": "a" * 40,
        "tip": "b" * 40,
        "commits": (Commit("b" * 40, f"subject {ESC}[2J"),),
        "files": (FileChange("README", "modified", 1, 0, (hunk,)),),
        "verify": Verify("passed", "make test", 0),
        "summary": "did it",
        "summary_from": "/d/reports/w1.md",
        "uncommitted": False,
        "moved": False,
        "rounds": (),
        "since_last": (),
    }
    base.update(kw)
    return Review(**base)  # type: ignore[arg-type]


def test_plain_when_not_a_terminal_coloured_when_it_is() -> None:
    plain = render(_review(), colour=False)
    assert f"{ESC}[" not in plain
    assert plain.index("README  +1 -0") < plain.index("@@ -1 +1,2 @@")
    assert "verify: passed (make test)" in plain and "did it" in plain
    coloured = render(_review(), colour=True)
    assert f"{ESC}[32m+evil" in coloured  # an added line in green


def test_what_the_worker_wrote_never_reaches_the_terminal_as_an_escape() -> None:
    for colour in (False, True):
        out = render(_review(), colour=colour)
        assert "]52;" not in out.replace("\\x1b]52;", "")  # shown, never sent
        assert f"{ESC}[2J" not in out and "\\x1b[2J" in out


def test_rounds_show_what_was_asked_and_what_followed() -> None:
    asked = Round(1, 0, "c" * 40, (Comment("why?", "README", 2), Comment("add tests")), "told w1-1")
    out = render(_review(rounds=(asked,), since_last=(Commit("d" * 40, "fix it"),)), colour=False)
    assert "round 1 on cccccccccccc, sent (told w1-1):" in out
    assert "README:2: why?" in out and "the whole change: add tests" in out
    assert "since round 1: 1 commit(s)" in out and "fix it" in out
    out = render(_review(rounds=(asked,)), colour=False)
    assert "since round 1: no new commits" in out
    out = render(_review(moved=True, uncommitted=True), colour=False)
    assert "the branch moved" in out and "uncommitted work" in out


def test_a_draft_after_a_sent_round_keeps_what_followed_the_sent_one() -> None:
    sent = Round(1, 0, "c" * 40, (Comment("why?"),), "resumed")
    draft = Round(2, 0, "d" * 40, (Comment("and this?"),))
    out = render(_review(rounds=(sent, draft), since_last=(Commit("d" * 40, "fix"),)), False)
    assert "round 2 on dddddddddddd, draft (not sent: --send):" in out
    assert "since round 1: 1 commit(s)" in out
