"""The watch's review pane drawn from a review's JSON alone: each line of the branch's tip
carries the place a comment on it goes (added and context lines, never a removed one), the
latest round's comments sit under their line, a review in several repository sections shows
each section's files, and a worker's escape sequences reach the terminal as visible text."""

from __future__ import annotations

from typing import Any

from looop.tui.review import review_lines


def change(path: str, lines: list[str], start: int = 10) -> dict[str, Any]:
    hunk = {"header": f"@@ -{start},3 +{start},3 @@", "new_start": start, "new_count": 3}
    return {
        "path": path,
        "status": "modified",
        "added": 1,
        "removed": 1,
        "binary": False,
        "cut": False,
        "hunks": [hunk | {"lines": lines}],
    }


def review(**more: Any) -> dict[str, Any]:
    base = {
        "wid": "w1",
        "branch": "looop/w1",
        "base": "a" * 40,
        "tip": "b" * 40,
        "commits": [{"sha": "c" * 40, "subject": "fix it"}],
        "files": [change("app.py", [" keep", "-old", "+new", " tail"])],
        "verify": {"state": "failed", "cmd": "make test", "exit_code": 1, "timed_out": False,
                   "output": ""},
        "summary": "done",
        "rounds": [],
        "moved": False,
        "uncommitted": None,
    }  # fmt: skip
    return base | more


def test_lines_of_the_tip_carry_their_place_and_a_removed_line_none() -> None:
    drawn = review_lines(review())
    placed = {t.plain.strip(): p for t, p in drawn if p is not None}
    assert placed == {"10  keep": ("app.py", 10), "11 +new": ("app.py", 11),
                      "12  tail": ("app.py", 12)}  # fmt: skip
    removed = next((t, p) for t, p in drawn if t.plain.strip() == "-old")
    assert removed[1] is None and "red" in str(removed[0].style)
    assert any("verify: FAILED (make test)" in t.plain for t, _ in drawn)


def test_the_latest_rounds_comments_show_under_their_line() -> None:
    note = {"text": "why new?", "file": "app.py", "line": 11, "context": []}
    rd = {"n": 1, "ts": 0, "tip": "b" * 40, "sent": "", "comments": [note]}
    drawn = [t.plain for t, _ in review_lines(review(rounds=[rd]))]
    at = drawn.index(next(x for x in drawn if x.strip() == "11 +new"))
    assert drawn[at + 1].strip() == "↳ why new?"
    assert any("draft (s sends it)" in x for x in drawn)


def test_a_review_in_repository_sections_shows_each_sections_files() -> None:
    repos = [
        {"repo": "/src/api", "files": [change("api.py", ["+a"], 1)]},
        {"repo": "/src/web", "files": [change("page.js", ["+b"], 5)]},
    ]
    drawn = review_lines(review(files=[], repos=repos))
    text = [t.plain for t, _ in drawn]
    assert "repository /src/api" in text and "repository /src/web" in text
    assert ("page.js", 5) in [p for _, p in drawn]


def test_a_worker_of_several_repos_places_comments_under_each_checkouts_folder() -> None:
    note = {"text": "why b?", "file": "web/page.js", "line": 5, "context": []}
    rd = {"n": 1, "ts": 0, "tip": "b" * 40, "sent": "", "comments": [note]}
    repos = [
        {"name": "api", "repo": "/src/api", "files": [change("page.js", ["+a"], 1)]},
        {"name": "web", "repo": "/src/web", "files": [change("page.js", ["+b"], 5)]},
    ]
    drawn = review_lines(review(files=[], repos=repos, rounds=[rd]))
    places = list(dict.fromkeys(p for _, p in drawn if p is not None))
    assert places == [("api/page.js", 1), ("web/page.js", 5)]  # as `--comment NAME/FILE:LINE`
    text = [t.plain for t, _ in drawn]
    assert text[text.index(next(x for x in text if x.strip() == "5 +b")) + 1].strip() == "↳ why b?"


def test_a_workers_escape_sequences_are_shown_not_run() -> None:
    evil = change("x.py", ["+\x1b]0;owned\x07\x1b[2J"])
    text = "\n".join(t.plain for t, _ in review_lines(review(files=[evil], summary="\x1b[31m")))
    assert "\x1b" not in text and "\x07" not in text


def test_the_deciders_landing_proposal_shows_with_how_to_answer_it() -> None:
    plain = [t.plain for t, _ in review_lines(review())]
    assert not [p for p in plain if "proposes landing" in p]
    proposal = {"ask": "w1-2", "reason": "verify passed", "ts": 0, "tip": "b" * 40}
    plain = [t.plain for t, _ in review_lines(review(proposal=proposal))]
    said = [p for p in plain if "proposes landing" in p]
    assert said == [
        "the decider proposes landing this (ask w1-2): verify passed — l lands it; "
        "decline: looop answer w1-2 no"
    ]


def test_a_landed_workers_review_says_it_landed() -> None:
    plain = [t.plain for t, _ in review_lines(review(landed="landed into main at abc"))]
    assert "landed into main at abc — nothing left to land" in plain
