"""The pod's side of `looop pod change` and an SSH host's satellite's land (both
act/landthere.py), on bad requests: each is one line, as an answer the home reads
(`refused`) or an error it prints, and nothing is fetched or pushed. Real clones, fetches and
pushes: tests/integration/test_pod_land.py."""

from __future__ import annotations

import pytest

from looop.act.landthere import pod_change, there_verb
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote.kube import podrun
from looop.remote.ssh.satellite import handle
from looop.workers.treerecord import Tree, save


def test_an_unknown_verb_or_a_bad_id_is_one_line(ctx: Ctx) -> None:
    with pytest.raises(LooopError, match="unknown pod change verb 'rm'"):
        pod_change(ctx, "rm", {"id": "w1"})
    with pytest.raises(LooopError):
        pod_change(ctx, "review", {"id": "../w1"})
    with pytest.raises(LooopError, match="names no worker id"):
        pod_change(ctx, "land", {})


@pytest.mark.parametrize(
    ("req", "said"),
    [
        ({"mode": "rebase"}, "no way to land called 'rebase'"),
        ({"mode": "ff", "into": "-x"}, "'into' must be a branch"),
        ({"mode": "ff", "repo": 3}, "'repo' must be a branch or folder name"),
        ({"mode": "ff"}, "has no worktree"),  # a worker with no clone recorded here
    ],
)
def test_a_bad_landing_is_refused_as_an_answer(ctx: Ctx, req: dict[str, object], said: str) -> None:
    (ctx.paths.sessions / "w1").mkdir(parents=True)  # the pod's own session of the worker
    got = pod_change(ctx, "land", {"id": "w1", **req})
    assert said in str(got["refused"]) and got["kind"] == "land" and got["landed"] == []


def test_a_landing_goes_only_to_a_url_a_pod_could_clone(ctx: Ctx) -> None:
    """The home names the URL its Job cloned; one that is no such URL never reaches git."""
    save(ctx, Tree("w1", "/nowhere", "main", "b" * 40, "/nowhere", "/g", "/g", origin="x"))
    for urls, said in (
        ({"": "file:///etc"}, "not one a pod can clone from"),
        ({"other": "https://git.example/a.git"}, "no URL for checkout repo"),
        ("https://git.example/a.git", "'urls' must map"),
    ):
        got = pod_change(ctx, "land", {"id": "w1", "mode": "ff", "urls": urls})
        assert said in str(got["refused"]), got


def test_nothing_is_recorded_where_no_clone_is(ctx: Ctx, tmp_path: object) -> None:
    (ctx.paths.sessions / "w1").mkdir(parents=True)  # the pod's own session of the worker
    assert podrun.record_checkouts(ctx, "w1", str(ctx.paths.data), []) == []
    with pytest.raises(LooopError, match="has no worktree"):
        pod_change(ctx, "diff", {"id": "w1"})


@pytest.mark.parametrize("at", [None, {}, {"tips": "abc"}, {"tips": {"": 7}}])
def test_a_landing_that_names_no_approved_tip_is_refused_there(ctx: Ctx, at: object) -> None:
    """A pod or host lands only the tips its home says the human approved; a request without
    them (an older home's) is refused, never landed at whatever the branch holds now."""
    save(ctx, Tree("w1", "/nowhere", "main", "b" * 40, "/nowhere", "/g", "/g", origin="x"))
    said = "land: 'at' must name the tip approved of each repository"
    assert pod_change(ctx, "land", {"id": "w1", "mode": "ff", "at": at})["refused"] == said
    assert there_verb(ctx, ctx.paths.data, "land", {"id": "w1", "at": at}, "") == {
        "refused": said,
        "kind": "land",
    }


def test_a_satellite_refuses_an_older_homes_protocol(ctx: Ctx) -> None:
    """An older home's land carries no approved tips: its protocol is refused before any verb."""
    got = handle(ctx, "land", {"v": 1, "id": "w1", "mode": "ff"}, "0.1.0")
    assert got == {"error": "this host's looop 0.1.0 speaks satellite protocol 2"}
