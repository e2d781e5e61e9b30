"""A worker on a real SSH host has its change read there, through its Backend: the web's diff
and review of it are its host's satellite's answers (`diff`, `review`), read in its checkout
on the host, with nothing of it checked out at home."""

from __future__ import annotations

import pytest

from tests.hosts.conftest import Home
from tests.hosts.repos import host_repo
from tests.hosts.util import looop
from tests.hosts.webutil import Web, web_server  # noqa: F401 (the `web` fixture)

WORK = (
    "bash -c 'echo x > made.txt; git add made.txt; "
    "git -c user.name=w -c user.email=w@h commit -qm made-by-worker; "
    "echo untracked > loose.txt; echo COMMITTED; cat' # {{prompt_file}}"
)


@pytest.mark.timeout(240)
def test_a_far_workers_diff_and_review_are_read_on_its_host(home: Home, web: Web) -> None:
    d = home.data
    h1 = next(h for h in home.lab.hosts if h.name == "h1")
    repo = host_repo(h1, "change")
    start = looop(
        d, "worker", "start", "hc1", "x", "--host", "h1", "--repo", str(repo),
        "--branch", "feat/hc1", "--command", WORK,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    try:
        assert looop(d, "expect", "hc1", "COMMITTED", "--timeout", "30s").returncode == 0
        assert not (d / "checkouts" / "hc1").exists()  # its checkout is on the host only
        code, got = web.call("GET", "/sessions/hc1/diff")
        assert code == 200, got
        assert "+++ b/made.txt" in got["diff"] and "+++ b/loose.txt" in got["diff"], got
        assert got["cut"] is False
        code, rv = web.call("GET", "/workers/hc1/review")
        assert code == 200, rv
        assert rv["wid"] == "hc1" and rv["branch"] == "feat/hc1", rv
        assert [c["subject"] for c in rv["commits"]] == ["made-by-worker"], rv
        assert {f["path"] for f in rv["files"]} == {"made.txt"}, rv
        # a comment drafted on it (its tip read there), kept here until sent
        code, said = web.call("POST", "/workers/hc1/review/comments", {"text": "hi"})
        assert code == 200 and said == {"ok": True, "round": 1, "comments": 1}, said
    finally:
        looop(d, "kill", "hc1")
