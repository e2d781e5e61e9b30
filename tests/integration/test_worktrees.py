"""A worker in its own git worktree (real git, real sessions): `--repo` starts it in
DATA/worktrees/<id> on its own branch, `looop worker diff` shows its work, reaping removes a clean
worktree and keeps its branch, a dirty one is never removed, sys-sessions shows branch and
dirtiness; and every bad input is refused with one line before anything changes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.act.decision import DecisionError
from looop.act.parse import parse_decision
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.sense.probes import probe_sessions
from looop.sessions.client import wait
from looop.sessions.state import list_sessions, prune_aged
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from looop.workers.worktree import end_generation
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env, wire

pytestmark = pytest.mark.timeout(90)
LOOOP = str(Path(sys.executable).parent / "looop")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def make_repo(path: Path, commit: bool = True) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.invalid")
    if commit:
        (path / "README").write_text("hello\n")
        git(path, "add", "README")
        git(path, "commit", "-qm", "start")
    return path


@pytest.fixture
def wctx(tmp_path: Path, ctx: Ctx) -> Ctx:
    """A data dir whose path has a space, wired to a runner whose worker is a shell script."""
    data = tmp_path / "data dir"
    data.mkdir()
    c = replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time()))
    wire(c, [])
    return c


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "my repo")


# The worker: says where it stands, commits one change, leaves one edit and one new file.
WORK = """set -e
mkdir -p "$LOOOP_REPORTS_DIR"
out="$LOOOP_REPORTS_DIR/{wid}.txt"
{{ pwd; git rev-parse --abbrev-ref HEAD; echo "$LOOOP_WORKSPACE"; }} > "$out"
echo committed >> README
git commit -qam 'worker change'
{tail}
"""
DIRTY = "echo uncommitted >> README\necho brand-new > new.txt"


def run_worker(c: Ctx, tmp: Path, wid: str, repo: Path, tail: str = DIRTY, **kw: str) -> Path:
    script = tmp / f"{wid}.sh"
    script.write_text(WORK.format(wid=wid, tail=tail))
    start_worker(
        c,
        c.knobs(),
        StartRequest(
            wid, "work", command=f"bash '{script}' # {{{{prompt_file}}}}", repo=str(repo), **kw
        ),
    )
    code = wait(c.paths.data, wid, 30, c.clock)
    assert code == 0, (c.paths.sessions / wid / "output.log").read_text()
    return c.paths.checkouts / wid


def where(c: Ctx, wid: str) -> list[str]:
    return (c.paths.reports / f"{wid}.txt").read_text().splitlines()


def test_a_repo_worker_works_in_its_own_worktree_on_its_own_branch(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    tree = run_worker(wctx, tmp_path, "w1", repo)
    cwd, branch, workspace = where(wctx, "w1")
    assert Path(cwd) == tree and workspace == str(tree)
    assert branch == "looop/w1"
    # the commit is on its branch in the main repo; the main checkout is untouched
    assert "worker change" in git(repo, "log", "--oneline", "looop/w1")
    assert "worker change" not in git(repo, "log", "--oneline", "main")
    assert (repo / "README").read_text() == "hello\n"
    assert git(repo, "status", "--porcelain") == ""
    # the brief says where its code work goes
    prompt = (wctx.paths.prompts / "w1.md").read_text()
    assert str(tree) in prompt and "looop/w1" in prompt
    assert "worktree add" not in prompt  # not told to make another one
    assert "your starting directory" not in prompt and prompt.rstrip().endswith("work")


def test_worker_diff_shows_commits_edits_and_new_files(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    run_worker(wctx, tmp_path, "w1", repo)
    env = clean_env(tmp_path, wctx.paths.data)

    def looop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=env, capture_output=True, text=True, timeout=30, check=False
        )

    done = looop("worker", "diff", "w1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "+committed" in out and "+uncommitted" in out  # its commit and its edit
    assert "new.txt" in out and "+brand-new" in out  # its untracked file, as a new file
    done = looop("worker", "diff", "w1", "--stat")
    assert done.returncode == 0 and "README" in done.stdout and "new.txt" in done.stdout
    assert "+committed" not in done.stdout
    done = looop("worker", "diff", "nope")
    assert done.returncode != 0 and "no worktree" in done.stderr
    assert "Traceback" not in done.stderr
    # once reaped (the worktree kept: it is dirty) and committed and reaped again, the diff
    # comes from the branch
    tree = wctx.paths.checkouts / "w1"
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "rest")
    prune_aged(wctx.paths.data, 0, wctx.clock.now())
    end_generation(wctx, "w1")
    assert not tree.exists()
    done = looop("worker", "diff", "w1")
    assert done.returncode == 0 and "+uncommitted" in done.stdout and "+brand-new" in done.stdout


def test_a_clean_worktree_goes_with_its_session_and_its_branch_stays(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    tree = run_worker(wctx, tmp_path, "w1", repo, tail="true")
    assert tree.is_dir()
    assert prune_aged(wctx.paths.data, 0, wctx.clock.now()) == ["w1"]
    end_generation(wctx, "w1")  # what the pulse's reaping does next
    assert not tree.exists()
    assert "worker change" in git(repo, "log", "--oneline", "looop/w1")  # the branch stays
    assert "checkouts/w1" not in git(repo, "worktree", "list")  # its checkout, by path
    names = [name for name, _ in wctx.events.seen]  # type: ignore[attr-defined]
    assert "worktree.kept" not in names


def test_a_dirty_worktree_is_kept_said_and_blocks_a_restart_of_its_id(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    tree = run_worker(wctx, tmp_path, "w1", repo)
    prune_aged(wctx.paths.data, 0, wctx.clock.now())
    end_generation(wctx, "w1")
    assert (tree / "new.txt").read_text() == "brand-new\n"  # nothing lost
    seen = wctx.events.seen  # type: ignore[attr-defined]
    said = [str(m["msg"]) for name, m in seen if name == "worktree.kept"]
    assert said and str(tree) in said[0] and "worktree remove" in said[0]
    with pytest.raises(LooopError, match="uncommitted work") as e:
        start_worker(
            wctx,
            wctx.knobs(),
            StartRequest("w1", "again", command="true # {{prompt_file}}", repo=str(repo)),
        )
    assert "\n" not in str(e.value)
    # once the human commits it, the id starts again on the same branch, from its tip
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "kept work")
    run_worker(wctx, tmp_path, "w1", repo, tail="true")
    log = git(repo, "log", "--oneline", "looop/w1")
    assert "kept work" in log and log.count("worker change") == 2


def test_an_existing_free_branch_is_checked_out(wctx: Ctx, repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "feature")
    run_worker(wctx, tmp_path, "w1", repo, tail="true", branch="feature")
    assert where(wctx, "w1")[1] == "feature"
    assert "worker change" in git(repo, "log", "--oneline", "feature")


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing", "does not exist"),
        ("file", "not a folder"),
        ("plain", "not a git repository"),
        ("bare", "bare repository"),
        ("empty", "no commits yet"),
        ("relative", "absolute path"),
        ("bad-branch", "not a valid branch name"),
        ("dash-branch", "not a valid branch name"),
        ("busy-branch", "is checked out at"),
        ("branch-alone", "needs a repo"),
        ("in-the-way", "in the way"),
    ],
)
def test_bad_inputs_are_refused_with_one_line_and_change_nothing(
    wctx: Ctx, repo: Path, tmp_path: Path, case: str, expect: str
) -> None:
    target: str | None = str(repo)
    branch = None
    if case == "missing":
        target = str(tmp_path / "nowhere")
    elif case == "file":
        (tmp_path / "f").write_text("x")
        target = str(tmp_path / "f")
    elif case == "plain":
        (tmp_path / "plain").mkdir()
        target = str(tmp_path / "plain")
    elif case == "bare":
        git(tmp_path, "init", "-q", "--bare", "bare.git")
        target = str(tmp_path / "bare.git")
    elif case == "empty":
        target = str(make_repo(tmp_path / "empty", commit=False))
    elif case == "relative":
        target = "my repo"
    elif case == "bad-branch":
        branch = "two..dots"
    elif case == "dash-branch":
        branch = "-x"
    elif case == "busy-branch":
        branch = "main"  # the main checkout's own branch
    elif case == "branch-alone":
        target, branch = None, "feature"
    elif case == "in-the-way":
        (wctx.paths.checkouts / "w1").mkdir(parents=True)
    with pytest.raises(LooopError) as e:
        start_worker(
            wctx,
            wctx.knobs(),
            StartRequest("w1", "go", command="true # {{prompt_file}}", repo=target, branch=branch),
        )
    assert expect in str(e.value) and "\n" not in str(e.value)
    assert list_sessions(wctx.paths.data) == []  # nothing started
    assert git(repo, "branch", "--list", "looop/*") == ""  # no branch made
    assert "checkouts/w1" not in git(repo, "worktree", "list")  # its checkout, by path


def test_sys_sessions_shows_branch_and_uncommitted_work(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    run_worker(wctx, tmp_path, "w1", repo)
    run_worker(wctx, tmp_path, "w2", repo, tail="true")
    detail = probe_sessions(wctx)["detail"]["workers"]
    assert detail["w1"]["branch"] == "looop/w1" and detail["w1"]["uncommitted"] is True
    assert detail["w2"]["branch"] == "looop/w2" and detail["w2"]["uncommitted"] is False
    # `looop ls` names the branch from the record (no git call), a BRANCH column once one has
    env = clean_env(tmp_path, wctx.paths.data)
    done = subprocess.run(
        [LOOOP, "ls", "-a", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows["w1"]["branch"] == "looop/w1" and rows["pulse"].get("branch") is None
    table = subprocess.run(
        [LOOOP, "ls", "-a"], env=env, capture_output=True, text=True, timeout=30
    ).stdout
    assert "BRANCH" in table.splitlines()[0] and "looop/w2" in table


def test_decisions_carry_repo_and_branch_and_refuse_bad_ones() -> None:
    d = parse_decision(
        json.dumps(
            {"action": "start_worker", "id": "w1", "prompt": "p", "repo": "/r", "branch": "b"}
        ).encode()
    )
    assert (d.action.repo, d.action.branch) == ("/r", "b")  # type: ignore[union-attr]
    for extra, msg in (
        ({"branch": "b"}, "field 'branch' needs 'repo'"),
        ({"repo": 3}, "field 'repo' must be a string"),
        ({"repo": " "}, "field 'repo' must be the path"),
        ({"repo": "/r", "branch": ""}, "field 'branch' must be a branch name"),
    ):
        obj = {"action": "start_worker", "id": "w1", "prompt": "p", **extra}
        with pytest.raises(DecisionError, match=msg):
            parse_decision(json.dumps(obj).encode())


@pytest.mark.timeout(60)
def test_the_cli_takes_a_relative_repo_and_a_branch(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(tmp_path, data)
    (data / "config.json").write_text(
        json.dumps({"default": "sh", "runners": {"sh": {"worker": "sleep 30 # {{prompt_file}}"}}})
    )
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp_path)
    try:
        cli = Cli(capsys, mp, data, env, FixedClock(t=time.time()))
        code, _, err = cli("worker", "start", "w1", "go", "--repo", "my repo", "--branch", "x/y")
        assert code == 0, err
        assert (Paths.at(data).checkouts / "w1" / "README").is_file()
        assert "x/y" in git(repo, "worktree", "list")
        code, _, err = cli("worker", "start", "w2", "go", "--repo", "nowhere")
        assert code != 0 and "does not exist" in err and str(tmp_path / "nowhere") in err
        cli("kill", "w1")
    finally:
        mp.undo()
