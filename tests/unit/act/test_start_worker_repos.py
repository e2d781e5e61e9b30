"""start_worker's `repo` as a list (one task across repositories): parsed with every path kept
in order and handed to the start, the one-path spelling unchanged, and a bad list refused in
one line naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from looop.act.decision import DecisionError
from looop.act.moves.workers import StartWorker
from looop.act.parse import parse_decision
from looop.workers.startrecord import request_from, request_json


def parse(obj: dict[str, Any]) -> StartWorker:
    action = parse_decision(json.dumps(obj).encode()).action
    assert isinstance(action, StartWorker)
    return action


def test_a_list_of_repos_reaches_the_start_in_order() -> None:
    move = parse(
        {"action": "start_worker", "id": "w", "prompt": "p", "repo": ["/src/app", "/src/lib"]}
    )
    req = move.request(True, None)
    assert (req.repo, req.repos) == ("/src/app", ("/src/app", "/src/lib"))


@pytest.mark.parametrize("given", ["/src/app", ["/src/app"]])
def test_one_repo_is_one_repo_however_spelled(given: object) -> None:
    req = parse({"action": "start_worker", "id": "w", "prompt": "p", "repo": given}).request(
        False, None
    )
    assert (req.repo, req.repos) == ("/src/app", ())


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ([], "a list of 1 to 8 paths"),
        (["/a", 3], "a list of 1 to 8 paths"),
        (["/a", " "], "a list of 1 to 8 paths"),
        ([f"/r{n}" for n in range(9)], "a list of 1 to 8 paths"),
        (["/a", "/b", "/a"], 'names "/a" twice — give each repository once'),
        (7, "field 'repo' must be a string"),
    ],
)
def test_a_bad_repo_list_is_one_line(given: object, said: str) -> None:
    with pytest.raises(DecisionError) as e:
        parse({"action": "start_worker", "id": "w", "prompt": "p", "repo": given})
    assert said in str(e.value) and "start_worker" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_held_start_of_several_repos_keeps_them_for_the_reset() -> None:
    req = parse(
        {"action": "start_worker", "id": "w", "prompt": "p", "repo": ["/src/app", "/src/lib"]}
    ).request(True, None)
    back = request_from(json.loads(json.dumps(request_json(req))))
    assert (back.repo, back.repos) == ("/src/app", ("/src/app", "/src/lib"))


@pytest.mark.parametrize(
    "branch",
    [
        "refs/heads/x",
        "heads/x",
        "remotes/origin/x",
        "refs/tags/v1",
        "tags/v1",
        "HEAD",
        "FETCH_HEAD",
    ],
)
def test_a_branch_spelled_as_a_ref_is_refused_in_one_line(branch: str) -> None:
    obj = {"action": "start_worker", "id": "w", "prompt": "p", "repo": "/src/app"}
    with pytest.raises(DecisionError, match="spells a git ref") as got:
        parse({**obj, "branch": branch})
    assert "\n" not in str(got.value) and branch in str(got.value)
    for fine in ("looop/x", "feature/heads", "x/refs/y", "HEADS-up"):
        assert parse({**obj, "branch": fine}).branch == fine
