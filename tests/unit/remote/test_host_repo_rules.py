"""What a worker on a host may be given as its repo, decided at home from the text alone
(remote/repospec.py, shared with Kubernetes; remote/dispatch.py), and where a worker
with a repo is placed when no host is named."""

from __future__ import annotations

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import dispatch, repospec
from looop.remote import hosts as reg
from looop.remote.hosts import HostError
from looop.workers import worktree

GOOD_URLS = (
    "https://github.com/example/app.git",
    "http://git.lan:8080/app",
    "ssh://git@git.lan:2222/srv/app.git",
    "git://10.0.0.1/app.git",
    "git@github.com:example/app.git",
)
BAD: list[tuple[str, str]] = [
    ("app", "not a URL host h1 can clone (or give an absolute path"),
    ("./app", "not a URL host h1 can clone"),
    ("~user/app", "not a URL host h1 can clone"),
    ("file:///srv/app.git", "scheme 'file'"),
    ("ext::sh -c touch% /tmp/x", "spaces"),
    ("ext::sh", "transport helper"),
    ("-uhost:x", "starts with '-'"),
    ("https://me:pw@example.com/a.git", "credentials"),
    ("ssh://me:pw@example.com/a.git", "credentials"),
    ("https://", "no host"),
    ("https://x/a\x1b", "control"),
    ("https://x/" + "a" * 3000, "over 2048"),
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_urls_a_host_can_clone_pass_as_given(url: str) -> None:
    assert repospec.check_url(url, "host h1") == url
    dispatch.check_host_repo("h1", url, None)  # no error


@pytest.mark.parametrize(("repo", "said"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_anything_else_is_refused_in_one_line_naming_the_host(repo: str, said: str) -> None:
    with pytest.raises(LooopError) as got:
        dispatch.check_host_repo("h1", repo, None)
    msg = str(got.value)
    assert said in msg and "\n" not in msg and len(msg) < 300, msg


def test_a_pods_wording_is_kept_for_kubernetes() -> None:
    with pytest.raises(LooopError, match="not a URL a pod can clone \\(a local path is on"):
        repospec.check_url("/home/u/app")
    with pytest.raises(LooopError, match="a git credential in the image or a Secret"):
        repospec.check_url("https://u:p@x/y")
    with pytest.raises(LooopError, match="an ssh key on the host"):
        repospec.check_url("https://u:p@x/y", "host h1")


def test_paths_on_the_host_are_the_hosts_to_check() -> None:
    for path in ("/srv/app", "~/src/app", "~", "/does/not/exist/here"):
        assert repospec.is_host_path(path)
        dispatch.check_host_repo("h1", path, "feature/x")  # whether it is a repo: the host says
    for not_path in ("app", "~user/app", "git@x:y", "https://x/y"):
        assert not repospec.is_host_path(not_path)
    with pytest.raises(LooopError, match="control characters"):
        dispatch.check_host_repo("h1", "/srv/a\x1bpp", None)


@pytest.mark.parametrize("branch", ["a..b", "-x", "x.lock", "a b", "a~1", "@", "/a", "a/", "ü"])
def test_bad_branches_are_refused_before_anything_crosses(branch: str) -> None:
    with pytest.raises(LooopError, match="not a usable git branch name") as got:
        dispatch.check_host_repo("h1", "/srv/app", branch)
    assert "\n" not in str(got.value)


def test_a_path_repo_stays_home_and_a_url_goes_to_a_host(ctx: Ctx) -> None:
    data = ctx.paths.data
    reg.add(data, "s1", "ssh://me@h", 4)
    # with room to spare at home, an unplaced worker stays home…
    assert dispatch.place(ctx, "w1", None, local_live=0, max_workers=8) is None
    # …and so does one whose repo is a path, even with the home fuller than the host
    assert dispatch.place(ctx, "w1", None, 7, 8, repo="/srv/app") is None
    # a URL only a host clones: to the host, even when the home has more room
    assert dispatch.place(ctx, "w1", None, 0, 8, repo="https://x/app.git") == "s1"
    # a host named wins over both rules
    assert dispatch.place(ctx, "w1", "s1", 0, 8, repo="/srv/app") == "s1"
    for i in range(4):
        reg.write_record(data, f"busy{i}", "s1", over=False)
    with pytest.raises(HostError, match="only a host clones a repo URL"):
        reg.choose(data, 0, 8, home=False)


def test_a_url_at_home_says_where_urls_go(ctx: Ctx) -> None:
    for url in ("https://x/app.git", "git@x:app.git"):
        with pytest.raises(LooopError, match="a URL is cloned on a host \\(--host NAME"):
            worktree.plan(ctx, "w1", url, None)
    with pytest.raises(LooopError, match="give an absolute path"):
        worktree.plan(ctx, "w1", "app", None)


@pytest.mark.parametrize("branch", ["refs/heads/x", "heads/x", "remotes/o/x", "tags/v1", "HEAD"])
def test_a_branch_spelled_as_a_ref_is_refused_before_anything_crosses(branch: str) -> None:
    with pytest.raises(LooopError, match="spells a git ref"):
        dispatch.check_host_repo("h1", "/srv/app", branch)
