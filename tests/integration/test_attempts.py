"""Attempts on real git with real worker sessions: `looop worker start ID --attempts` starts
ID.1 … ID.N from one base, each in its own worktree and branch; `looop review ID` shows them
side by side, `looop diff ID.1 ID.3` where two differ, `looop needs` asks for a pick,
`looop watch`'s review pane shows an attempt's group above its change, and
`looop land ID --pick N` lands that one as `land` does, journals the pick and stops the
others (branches kept). Bad input is refused in one line with nothing started."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.home.sessionfiles import session_ids
from looop.sessions.client import wait
from looop.sessions.state import get_session
from looop.tui.app import WatchApp
from looop.tui.review import ReviewScreen
from looop.web.app import build_app
from looop.web.auth import Guard
from looop.workers.verify import record
from tests.helpers import Cli, clean_env, kill_sessions
from tests.integration.test_watch import SIZE, until
from tests.integration.test_watch_review import shown
from tests.integration.workerchange import LOOOP, cli, git, head, journal, refused, repo, wctx

pytestmark = pytest.mark.timeout(120)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take

# attempt n writes its own app.py and commits it; the first then stays up
ATTEMPT = """set -e
printf 'def f(x):\\n    return x * {n}\\n' > app.py
{more}git add -A
git commit -qm 'attempt {n}'
touch '{done}'
{tail}
"""


def _scripts(tmp: Path) -> str:
    """--attempts as three command lines, one script each."""
    lines = []
    for n in (1, 2, 3):
        script = tmp / f"a{n}.sh"
        more = "echo extra > extra.txt\n" if n == 2 else ""
        tail = "exec sleep 60" if n == 1 else ""
        script.write_text(ATTEMPT.format(n=n, more=more, done=tmp / f"a{n}.done", tail=tail))
        lines.append(f"bash '{script}' # {{{{prompt_file}}}}")
    return ",".join(lines)


def _committed(tmp: Path, n: int) -> None:
    deadline = time.monotonic() + 30
    while not (tmp / f"a{n}.done").exists():
        assert time.monotonic() < deadline, f"attempt {n} never committed"
        time.sleep(0.02)


async def _watch_review(c: Ctx, wid: str) -> list[str]:
    """The lines of `looop watch`'s review pane, opened with r on worker `wid`."""
    app = WatchApp(c, wid, show_all=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review pane")
        return shown(app)


def test_attempts_start_side_by_side_and_one_is_picked_and_landed(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    base = head(repo)
    try:
        code, out, err = cli(
            "worker", "start", "fix", "make f right", "--repo", str(repo),
            "--attempts", _scripts(tmp_path),
        )  # fmt: skip
        assert code == 0, err
        assert "3 attempts" in out and "looop land fix --pick N" in out
        for n in (2, 3):
            assert wait(wctx.paths.data, f"fix.{n}", 30, wctx.clock) == 0
        _committed(tmp_path, 1)
        for n in (1, 2, 3):  # each its own branch from the same base
            assert git(repo, "merge-base", "main", f"looop/fix.{n}").strip() == base
        record(wctx, "fix.2", "make test", True, 0, False, "ok")
        record(wctx, "fix.3", "make test", False, 1, False, "1 failed")

        code, out, err = cli("needs")  # fix.1 still runs, fix.2 verified
        assert code == 0 and "1 of 3 attempts verified: pick one" in out, (out, err)
        assert "looop review fix" in out

        code, out, err = cli("review", "fix")
        assert code == 0, err
        rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("fix.")}
        assert sorted(rows) == ["fix.1", "fix.2", "fix.3"]
        assert "running" in rows["fix.1"] and "pending" not in rows["fix.1"]
        assert "passed" in rows["fix.2"] and "+3 -0" in rows["fix.2"]  # app.py and extra.txt
        assert "failed" in rows["fix.3"] and "+2 -0" in rows["fix.3"]
        guard = Guard(token="t" * 43, bind="127.0.0.1", port=80, public=("testserver",))
        with TestClient(build_app(wctx, guard), base_url="http://testserver") as web:
            web.get(f"/?token={'t' * 43}", follow_redirects=False)
            side = web.get("/api/v1/workers/fix/review").json()["attempts"]  # the web's table
        assert [(r["id"], r["verify"], r["files"]) for r in side] == [
            ("fix.1", "none", 1), ("fix.2", "passed", 2), ("fix.3", "failed", 1)
        ]  # fmt: skip
        watched = asyncio.run(_watch_review(wctx, "fix.3"))  # watch: r on one attempt
        rows = {ln.split()[0]: ln for ln in watched if ln.startswith("fix.")}
        assert sorted(rows) == ["fix.1", "fix.2", "fix.3"] and "passed" in rows["fix.2"]
        assert any("+    return x * 3" in ln for ln in watched)  # then its own change
        code, out, err = cli("review", "fix", "--comment-all", "name the factor")
        assert code == 0 and out.count("round 1 drafted: 1 comment(s)") == 3, (out, err)
        assert all((wctx.paths.data / "reviews" / f"fix.{n}.json").exists() for n in (1, 2, 3))
        code, out, err = cli("review", "fix.3", "--comment-all", "and test it")
        assert code == 0 and "round 1 drafted: 2 comment(s)" in out, (out, err)
        code, out, err = cli("review", "fix.3")  # one attempt's change, as any worker's
        assert code == 0 and "+    return x * 3" in out, err

        env = clean_env(tmp_path, wctx.paths.data)  # git writes to the real stdout
        done = subprocess.run(
            [LOOOP, "diff", "fix.1", "fix.3"], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert "-    return x * 1" in done.stdout and "+    return x * 3" in done.stdout

        assert "attempt fix.1 is still at work" in refused(cli, "fix", "--pick", "1")
        assert "attempt fix.3 failed its verify" in refused(cli, "fix", "--pick", "3")
        assert "--force" in refused(cli, "fix", "--pick", "3")
        assert "no attempt fix.9 — pick one of 1, 2, 3" in refused(cli, "fix", "--pick", "9")
        assert "fix is 3 attempts — pick one of 1, 2, 3: `looop land fix --pick N`" in refused(
            cli, "fix"
        )
        assert head(repo) == base  # nothing landed

        code, out, err = cli("land", "fix", "--pick", "2")
        assert code == 0, err
        assert "landed worker fix.2" in out
        assert head(repo) == head(repo, "looop/fix.2") and (repo / "extra.txt").exists()
        said = journal(wctx)
        assert "user (cli): picked attempt fix.2 of fix; the others: fix.1 running" in said
        assert "fix.3 " in said and "(verify failed)" in said
        assert wait(wctx.paths.data, "fix.1", 30, wctx.clock) is not None
        assert not get_session(wctx.paths.data, "fix.1").alive  # the others stopped
        for n in (1, 3):  # their branches kept
            assert git(repo, "rev-parse", "--verify", f"looop/fix.{n}").strip()
        code, out, err = cli("needs")
        assert code == 0 and "pick one" not in out
    finally:
        kill_sessions(wctx.paths.data)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--attempts", "3"), "'attempts' needs 'repo'"),
        (("--repo", "REPO", "--attempts", "1"), "'attempts' must be 2 to 8"),
        (("--repo", "REPO", "--attempts", "sh,nope"), "attempt runner 'nope' is not in"),
        (("--repo", "REPO", "--attempts", "3"), "3 attempts need 3 workers and the fleet cap"),
        (("--repo", "REPO", "--attempts", "2", "--branch", "b"), "and no 'branch'"),
    ],
)
def test_bad_attempts_are_refused_in_one_line_with_nothing_started(
    wctx: Ctx, cli: Cli, repo: Path, args: tuple[str, ...], said: str
) -> None:
    cli.env["LOOOP_MAX_WORKERS"] = "2"
    given = [str(repo) if a == "REPO" else a for a in args]
    try:
        code, out, err = cli("worker", "start", "fix", "do it", *given)
        assert code == 1, (out, err)
        assert said in err and len(err.strip().splitlines()) == 1, err
        assert session_ids(str(wctx.paths.data)) == []  # nothing half-started
        assert "looop/fix" not in git(repo, "branch", "--list")
    finally:
        kill_sessions(wctx.paths.data)


def test_an_attempt_that_cannot_start_takes_back_those_started(
    wctx: Ctx, cli: Cli, repo: Path
) -> None:
    git(repo, "branch", "looop/fix.3")  # someone else's: attempt 3 may not take it over
    before = sorted(git(repo, "branch", "--list").split())
    line = "sleep 60 # {{prompt_file}}"
    try:
        code, out, err = cli(
            "worker", "start", "fix", "do it", "--repo", str(repo), "--attempts",
            ",".join([line] * 3),
        )  # fmt: skip
        assert code == 1, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "attempt fix.3 of 3 did not start: " in err, err
        assert "branch 'looop/fix.3'" in err and "fix.1, fix.2 stopped and removed" in err
        assert session_ids(str(wctx.paths.data)) == []  # no session left, live or dead
        assert sorted(git(repo, "branch", "--list").split()) == before  # their branches gone
        assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
        assert list(wctx.paths.checkouts.iterdir()) == []
        assert not any(wctx.paths.worktrees.glob("fix.*"))  # no record says otherwise
    finally:
        kill_sessions(wctx.paths.data)
