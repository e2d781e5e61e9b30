"""Landing a worker's change is a human's action only: no row of the action table lands,
merges or pushes, so no decision can name it, and the prompt never teaches it; and the land
config's bad values are each one line."""

from __future__ import annotations

import pytest

from looop.act.actions import ACTION_TAGS, ACTIONS
from looop.act.decision import DecisionError
from looop.act.landconfig import DEFAULT_PR, land_config, pr_argv
from looop.act.parse import decision_from_obj
from looop.home.errors import LooopError


def test_no_action_lands_merges_or_pushes() -> None:
    words = ("land", "merge", "push", "pull_request")
    assert not [tag for tag in ACTION_TAGS if any(w in tag for w in words)]
    assert not [a.__name__ for a in ACTIONS if any(w in a.__name__.lower() for w in words)]
    for tag in ("land", "land_worker", "merge_worker"):
        with pytest.raises((DecisionError, LooopError)):
            decision_from_obj({"action": tag, "id": "w1"})


def test_the_land_config_defaults_to_a_fast_forward_and_gh() -> None:
    got = land_config({})
    assert got.merge == "ff" and got.remote == "origin" and got.pr_timeout_s == 120
    assert " ".join(got.pr_command) == DEFAULT_PR


def test_the_pr_command_is_filled_word_by_word_never_split_again() -> None:
    words = land_config({"land": {"pr_command": "glab mr create -s {branch} -t {title}"}})
    fill = {"branch": "looop/w1", "base": "main", "title": "a {body}; rm -rf /", "body": "/b"}
    argv = pr_argv(words.pr_command, {**fill, "remote": "origin"})
    assert argv == ["glab", "mr", "create", "-s", "looop/w1", "-t", "a {body}; rm -rf /"]


@pytest.mark.parametrize(
    ("land", "said"),
    [
        ("ff", "'land' must be an object"),
        ({"merge": "rebase"}, 'land.merge must be "ff" or "merge"'),
        ({"remote": "--upload-pack=x"}, "land.remote must be a remote's name"),
        ({"pr_command": "gh 'unclosed"}, "land.pr_command must be a command line"),
        ({"pr_timeout_s": True}, "land.pr_timeout_s must be seconds"),
        ({"pr_timeout_s": 7200}, "land.pr_timeout_s must be seconds"),
    ],
)
def test_bad_land_config_is_one_line(land: object, said: str) -> None:
    with pytest.raises(LooopError) as e:
        land_config({"land": land})
    assert said in str(e.value) and "\n" not in str(e.value)
