"""What a human reviewed is exactly what lands, on real git with a live worker that commits
after the review: `looop land ID` lands the tip the last `looop review ID` showed, and a branch
that moved since is refused in one line (how many commits are new, how to review them);
`--at SHA` lands that commit, never a later one; a landing no review names is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.core.context import Ctx
from tests.helpers import Cli, kill_sessions
from tests.integration.workerchange import (
    LATER,
    cli,
    commits_later,
    git,
    head,
    refused,
    repo,
    start,
    wctx,
)

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take


def test_a_branch_that_moved_since_the_review_is_refused_and_at_lands_what_was_reviewed(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tail = LATER.format(go=tmp_path / "go", done=tmp_path / "done")
    start(wctx, tmp_path, "w1", repo, tail=tail)
    try:
        code, out, err = cli("review", "w1")
        assert code == 0, err
        reviewed = head(repo, "looop/w1")
        assert "app.py" in out and "backdoor.sh" not in out
        commits_later(tmp_path)
        later = head(repo, "looop/w1")
        assert later != reviewed

        said = refused(cli, "w1")
        assert "has 1 new commit(s) since the review you approved" in said
        assert f"at {reviewed[:12]}, now {later[:12]}" in said and "`looop review w1`" in said
        assert head(repo) != reviewed and not (repo / "backdoor.sh").exists()  # nothing landed

        code, out, err = cli("land", "w1", "--at", reviewed[:12])
        assert code == 0, err
        assert head(repo) == reviewed and f"at {reviewed[:12]}" in out  # not the later one
        assert not (repo / "backdoor.sh").exists()
        assert "backdoor.sh" not in git(repo, "ls-tree", "-r", "--name-only", "main")

        # reviewed again, the later commit is what a plain land approves
        assert cli("review", "w1")[0] == 0
        code, out, err = cli("land", "w1")
        assert code == 0, err
        assert head(repo) == later and (repo / "backdoor.sh").exists()
    finally:
        kill_sessions(wctx.paths.data)


def test_a_landing_no_review_names_is_refused(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    main = head(repo)
    said = refused(cli, "w2")
    assert "no review you saw names the tip of worker w2" in said and "--at SHA" in said
    assert "'main' is no commit's SHA" in refused(cli, "w2", "--at", "main")
    other = git(repo, "commit-tree", "-m", "elsewhere", f"{main}^{{tree}}").strip()
    assert f"{other[:12]} is not on worker w2's branch looop/w2" in refused(
        cli, "w2", "--at", other
    )
    assert head(repo) == main  # nothing landed
