"""What a satellite takes as a spawn's several repositories (remote/ssh/start.py): 2 to 8
absolute paths of repositories on its host, each a worktree side by side; anything else a
home could send (a URL, one path, nine, not a list, not text) is one line, before anything
changes."""

from __future__ import annotations

from typing import Any

import pytest

from looop.home.errors import LooopError
from looop.remote.ssh.start import MAX_REPOS, _repos


def test_none_is_one_repo_or_none_and_paths_are_taken_in_order() -> None:
    assert _repos({}, "w1") == ()
    assert _repos({"repos": ["/src/app", "/src/lib"]}, "w1") == ("/src/app", "/src/lib")


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (["/src/app"], "2 to 8 paths"),
        ([f"/src/r{i}" for i in range(MAX_REPOS + 1)], "2 to 8 paths"),
        ("/src/app /src/lib", "2 to 8 paths"),
        (["/src/app", 7], "2 to 8 paths"),
        (["/src/app", "https://example.com/lib.git"], "absolute path of a repository"),
        (["/src/app", "src/lib"], "absolute path of a repository"),
    ],
)
def test_what_a_host_cannot_take_is_one_line(raw: Any, said: str) -> None:
    with pytest.raises(LooopError) as e:
        _repos({"repos": raw}, "w1")
    assert said in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("worker w1: ")
