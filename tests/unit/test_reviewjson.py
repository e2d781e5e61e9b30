"""A far worker's review and landing as its host answers them (JSON): read back whole, and a
field of the wrong kind refused in one line, never guessed (act/landfar.py,
workers/review.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.act.landfar import landed_from_json
from looop.act.landing import Landed
from looop.home import jsonio
from looop.workers.review import BadReview, RepoChange, Review, Verify, review_from_json
from looop.workers.reviewgit import Commit, FileChange, Hunk

pytestmark = pytest.mark.unit


def _change(name: str) -> RepoChange:
    hunk = Hunk("@@ -1 +1,2 @@", 1, 2, (" app", "+by the worker"))
    files = (
        FileChange("README", "modified", 1, 0, (hunk,)),
        FileChange("logo.png", "added", -1, 0, ()),
    )
    return RepoChange(name, f"/src/{name}", "looop/w1", "a" * 40, "b" * 40,
                      (Commit("b" * 40, "a line"),), files, False, False)  # fmt: skip


def _review(*names: str) -> Review:
    repos = tuple(_change(n) for n in names)
    first = repos[0]
    return Review(
        wid="w1", repo=first.repo, branch=first.branch, base=first.base, tip=first.tip,
        commits=first.commits, files=first.files, verify=Verify("passed", "make", 0),
        summary="I did it", summary_from="/r/w1.md", uncommitted=False, moved=False,
        rounds=(), since_last=(), repos=repos,
    )  # fmt: skip


def _wire(obj: Any) -> Any:
    """As the host's answer reaches the home: JSON text."""
    return json.loads(json.dumps(obj))


@pytest.mark.parametrize("names", [("",), ("app", "lib")])
def test_a_review_reads_back_as_it_was_written(names: tuple[str, ...]) -> None:
    r = _review(*names)
    assert review_from_json(_wire(r.to_json())) == r
    assert review_from_json(_wire(r.to_json())).files[1].binary


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("tip",), 7),
        (("files",), "README"),
        (("files", 0, "added"), "1"),
        (("files", 0, "added"), True),
        (("files", 0, "hunks", 0, "lines"), [1, 2]),
        (("repos", 0, "commits"), [["sha"]]),
    ],
)
def test_a_field_of_the_wrong_kind_is_one_line(path: tuple[Any, ...], bad: object) -> None:
    obj = _wire(_review("app", "lib").to_json())
    if path[0] == "tip":  # the first repository's fields are read from its entry too
        obj["repos"][0]["tip"] = bad
    at: Any = obj
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = bad
    with pytest.raises(BadReview) as e:
        review_from_json(obj)
    assert "\n" not in str(e.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(BadReview):
        review_from_json(["a list"])


def test_a_landing_reads_back_with_each_repository() -> None:
    one = Landed("w1", "merge", "looop/w1", "main", "c" * 40, "", "app", "/src/app")
    two = one._replace(name="lib", repo="/src/lib")
    whole = one._replace(repos=(one, two))
    assert landed_from_json(_wire(jsonio.plain(whole))) == whole
    for broken in ({**one._asdict(), "mode": "rebase"}, {**one._asdict(), "commit": 1}, "x"):
        with pytest.raises((KeyError, TypeError, ValueError)):
            landed_from_json(broken)
