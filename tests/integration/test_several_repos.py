"""One task across several repositories (real git, real sessions): `looop worker start ID
--repo A --repo B` makes one worktree of each side by side in the worker's folder, each on the
worker's branch, each made ready (its `.worktreeinclude`, its setup); the worker starts in
that folder and its brief names every checkout. A repository given twice, a folder that is no
repository: one line each, nothing made (a sandboxed start: tests/sandbox/
test_sandboxed_several_repos.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from mcp.client.session import ClientSession

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.sessions.client import wait
from looop.workers import worktree as wt
from looop.workers.kepttrees import DAY, expire_kept, kept_trees
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from looop.workers.treerecord import load, load_all
from looop.workers.treework import diff_runs
from tests.clocks import FixedClock
from tests.helpers import Cli
from tests.integration.test_mcp import drive, text
from tests.integration.workerchange import cli, git, new_repo, repo, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take

# The worker: commits a change in each checkout of its folder, says where it started, reports.
WORK = """set -e
mkdir -p "$LOOOP_REPORTS_DIR"
pwd > "$LOOOP_REPORTS_DIR/{wid}.pwd"
for d in */; do
  (cd "$d" && echo "changed by {wid}" >> README && git commit -qam "change ${{d%/}}")
done
printf 'I changed README in both.\\n' > "$LOOOP_REPORTS_DIR/{wid}.md"
{tail}
"""


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "lib", "the lib\n", "lib start")


def start_both(c: Ctx, tmp: Path, wid: str, repos: list[Path], tail: str = "") -> Path:
    script = tmp / f"{wid}.sh"
    script.write_text(WORK.format(wid=wid, tail=tail))
    command = f"bash '{script}' # {{{{prompt_file}}}}"
    given = tuple(str(r) for r in repos)
    start_worker(
        c, c.knobs(), StartRequest(wid, "work", command=command, repo=given[0], repos=given)
    )
    if not tail:
        code = wait(c.paths.data, wid, 30, c.clock)
        assert code == 0, (c.paths.sessions / wid / "output.log").read_text()
    return c.paths.checkouts / wid


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def test_two_repos_get_a_worktree_each_side_by_side_and_the_brief_names_both(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    for r in (repo, lib):  # each repo's own include list and setup
        (r / ".gitignore").write_text(".env\nready.txt\n")
        (r / ".worktreeinclude").write_text(".env\n")
        (r / ".env").write_text(f"FROM={r.name}\n")
        git(r, "add", ".gitignore")
        git(r, "commit", "-qm", "ignore")
    cfg = json.loads(wctx.paths.config.read_text())
    cfg["worktree"] = {"setup": {str(r): "cat .env > ready.txt" for r in (repo, lib)}}
    wctx.paths.config.write_text(json.dumps(cfg))
    script = tmp_path / "w1.sh"
    script.write_text(WORK.format(wid="w1", tail=""))
    code, _, err = cli(
        "worker", "start", "w1", "go", "--repo", str(repo), "--repo", str(lib),
        "--command", f"bash '{script}' # {{{{prompt_file}}}}",
    )  # fmt: skip
    assert code == 0, err
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0
    home = wctx.paths.checkouts / "w1"
    assert (wctx.paths.reports / "w1.pwd").read_text().strip() == str(home)
    for r in (repo, lib):
        tree = home / r.name
        assert git(tree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "looop/w1"
        assert (tree / "ready.txt").read_text() == f"FROM={r.name}\n"  # include, then setup
        assert "changed by w1" in git(r, "show", "looop/w1:README")
        assert git(r, "rev-parse", "main") == git(r, "rev-parse", "looop/w1~1")

    brief = (wctx.paths.prompts / "w1.md").read_text()
    assert str(home) in brief
    for r in (repo, lib):
        assert f"`{r.name}/`: a git worktree of {r}, on branch `looop/w1`" in brief
    trees = load_all(wctx, "w1")
    assert [t.repo for t in trees] == [str(repo), str(lib)]
    # the reap: every checkout removed, the branches kept, the folder gone
    wt.release(wctx, "w1")
    assert not home.exists()
    assert all(t.removed for t in load_all(wctx, "w1"))
    assert "looop/w1" in branches(repo) and "looop/w1" in branches(lib)


def test_a_dirty_checkout_is_kept_alone_and_blocks_the_next_start(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path
) -> None:
    home = start_both(wctx, tmp_path, "w2", [repo, lib])
    (home / "lib" / "wip.txt").write_text("not committed\n")
    wt.release(wctx, "w2")
    assert not (home / repo.name).exists() and (home / "lib" / "wip.txt").exists()
    with pytest.raises(Exception, match=r"w2/lib holds uncommitted work — commit it there"):
        start_both(wctx, tmp_path, "w2", [repo, lib])
    os.remove(home / "lib" / "wip.txt")
    start_both(wctx, tmp_path, "w2", [repo, lib])  # its own branches, taken up again
    assert git(lib, "log", "--format=%s", "looop/w2").splitlines()[:2] == ["change lib"] * 2


@pytest.mark.parametrize("case", ["twice", "same repo by another path", "not git", "missing"])
def test_bad_repos_are_one_line_and_nothing_is_made(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path, case: str
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    other = {
        "twice": (str(repo), f"names {json.dumps(str(repo))} twice — give each repository once"),
        "same repo by another path": (str(repo / "sub"), "same repository"),
        "not git": (str(plain), "is not a git repository"),
        "missing": (str(tmp_path / "nope"), "does not exist"),
    }[case]
    (repo / "sub").mkdir()
    code, out, err = cli(
        "worker", "start", "w3", "go", "--repo", str(repo), "--repo", other[0],
        "--command", "true # {{prompt_file}}",
    )  # fmt: skip
    assert code == 1 and other[1] in err, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert not (wctx.paths.checkouts / "w3").exists()
    assert "looop/w3" not in branches(repo) and load(wctx, "w3") is None


def test_review_shows_one_change_across_both_repos_and_the_report_once(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    start_both(wctx, tmp_path, "w5", [repo, lib])
    code, out, err = cli("review", "w5")
    assert code == 0, err
    assert "worker w5 · 2 repositories" in out
    for r in (repo, lib):
        tip = git(r, "rev-parse", "looop/w5").strip()
        assert f"repo {r.name}: {r} · branch looop/w5 · " in out and f"..{tip[:12]}" in out
        assert f"── {r.name}/README (modified)" in out
    assert out.count("commits (1):") == 2 and out.count("+1 -0  (modified)") == 2
    assert out.count("I changed README in both.") == 1  # the worker's report, once
    code, raw, err = cli("review", "w5", "--json")
    assert code == 0, err
    got = json.loads(raw)
    # the one-repo fields stay (the first repo's); `repos` holds each, in the worker's order
    assert got["repo"] == str(repo) and got["branch"] == "looop/w5"
    assert [(x["name"], x["repo"]) for x in got["repos"]] == [
        (repo.name, str(repo)),
        ("lib", str(lib)),
    ]
    lib_change = got["repos"][1]
    assert lib_change["tip"] == git(lib, "rev-parse", "looop/w5").strip()
    assert [c["subject"] for c in lib_change["commits"]] == ["change lib"]
    (f,) = lib_change["files"]
    assert f["path"] == "README" and f["binary"] is False and f["added"] == 1
    assert "+changed by w5" in f["hunks"][0]["lines"]
    # a line comment names its repository as the worker sees it from its folder
    code, out, err = cli("review", "w5", "--comment", "lib/README:2", "say why")
    assert code == 0, err
    (rd,) = json.loads((wctx.paths.data / "reviews" / "w5.json").read_text())["rounds"]
    assert rd["comments"][0]["file"] == "lib/README"
    code, out, err = cli("review", "w5", "--comment", "README:2", "which one?")
    assert code == 1 and f"REPO one of: {repo.name}, lib" in err


def test_review_of_a_one_repo_worker_lists_that_repo_once(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w6", repo)
    code, raw, err = cli("review", "w6", "--json")
    assert code == 0, err
    got = json.loads(raw)
    (only,) = got["repos"]
    assert only["name"] == "" and only["repo"] == got["repo"] and only["files"] == got["files"]


def test_worker_diff_shows_each_repo_under_its_folder_name(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path
) -> None:
    home = start_both(wctx, tmp_path, "w8", [repo, lib])
    (home / "lib" / "new.txt").write_text("not yet added\n")
    shown = ""
    for argv, env in diff_runs(wctx, "w8"):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode in (0, 1), done.stderr
        shown += done.stdout
    assert f"--- a/{repo.name}/README" in shown and "--- a/lib/README" in shown
    assert "+++ b/lib/new.txt" in shown and shown.count("+changed by w8") == 2


def test_worker_diff_stat_names_each_file_with_its_repos_folder(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path, cli: Cli
) -> None:
    """git's own --stat names `README` of both checkouts alike: each is REPO/PATH, with its
    count and bar, and one total line across both."""
    home = start_both(wctx, tmp_path, "w8s", [repo, lib])
    (home / "lib" / "new.txt").write_text("one\ntwo\n")
    code, out, err = cli("worker", "diff", "w8s", "--stat")
    assert code == 0, err
    lines = out.splitlines()
    assert any(ln.split("|")[0].strip() == f"{repo.name}/README" for ln in lines), out
    assert any(ln.split("|")[0].strip() == "lib/README" for ln in lines), out
    (new,) = [ln for ln in lines if ln.split("|")[0].strip() == "lib/new.txt"]
    assert new.split("|")[1].split() == ["2", "++"], out
    assert lines[-1].strip() == "3 files changed, 4 insertions(+)", out
    assert not any(ln.split("|")[0].strip() == "README" for ln in lines), out


def test_a_kept_checkout_of_several_is_listed_and_expires_alone_into_its_own_patch(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path
) -> None:
    clock = wctx.clock
    assert isinstance(clock, FixedClock)
    home = start_both(wctx, tmp_path, "w7", [repo, lib])
    (home / "lib" / "wip.txt").write_text("not committed\n")
    wt.release(wctx, "w7")  # the reap: the clean one goes, the dirty one is kept
    kept_at = int(clock.now())
    (row,) = [k.row(clock.now()) for k in kept_trees(wctx, wctx.knobs())]
    assert row["id"] == "w7" and row["path"] == str(home / "lib") and row["state"] == "dirty"
    assert row["expires_at"] == kept_at + 14 * DAY
    clock.advance(14 * DAY + 1)
    expire_kept(wctx, wctx.knobs())
    patch = wctx.paths.worktrees / f"w7-lib-{kept_at}.patch"
    assert "+not committed" in patch.read_text()
    assert not home.exists() and all(t.removed for t in load_all(wctx, "w7"))
    assert kept_trees(wctx, wctx.knobs()) == []


def test_the_pulses_start_worker_takes_a_list_of_repos_and_no_foreign_branch_in_any(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path
) -> None:
    script = tmp_path / "w9.sh"
    script.write_text(WORK.format(wid="w9", tail=""))
    move = {
        "action": "start_worker", "id": "w9", "prompt": "change both",
        "command": f"bash '{script}' # {{{{prompt_file}}}}", "repo": [str(repo), str(lib)],
    }  # fmt: skip
    execute(wctx, wctx.knobs(), decision_from_obj(move))  # the pulse's own move
    assert wait(wctx.paths.data, "w9", 30, wctx.clock) == 0
    assert [t.part for t in load_all(wctx, "w9")] == [repo.name, "lib"]
    assert all("changed by w9" in git(r, "show", "looop/w9:README") for r in (repo, lib))
    git(lib, "branch", "feature")  # the user's branch, in one of the two
    with pytest.raises(LooopError) as e:
        execute(wctx, wctx.knobs(), decision_from_obj({**move, "id": "w10", "branch": "feature"}))
    assert f"branch 'feature' already exists in {lib}" in str(e.value)
    assert "\n" not in str(e.value) and not (wctx.paths.checkouts / "w10").exists()
    assert "feature" not in branches(repo)


def test_a_setup_failing_in_the_second_repo_takes_back_both_worktrees(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path
) -> None:
    cfg = json.loads(wctx.paths.config.read_text())
    cfg["worktree"] = {"setup": {str(repo): "true", str(lib): "echo broken; exit 3"}}
    wctx.paths.config.write_text(json.dumps(cfg))
    code, _, err = cli(
        "worker", "start", "w11", "go", "--repo", str(repo), "--repo", str(lib),
        "--command", "true # {{prompt_file}}",
    )  # fmt: skip
    assert code == 1 and "setup" in err and len(err.strip().splitlines()) == 1, err
    assert not (wctx.paths.checkouts / "w11").exists()
    assert "looop/w11" not in branches(repo) and "looop/w11" not in branches(lib)
    assert load(wctx, "w11") is None
    assert not (wctx.paths.worktrees / "w11.parts").exists()


def test_checkouts_are_named_by_their_repos_top_folder_and_made_unique(
    wctx: Ctx, tmp_path: Path
) -> None:
    made = []
    for where in ("a", "b"):
        r = tmp_path / where / "app"
        (r / "docs").mkdir(parents=True)
        git(r, "init", "-q", "-b", "main")
        git(r, "-c", "user.name=T", "-c", "user.email=t@x.invalid", "commit", "-q",
            "--allow-empty", "-m", "start")  # fmt: skip
        made.append(r)
    given = (str(made[0]), str(made[1] / "docs"))  # the second by a folder inside it
    start_worker(
        wctx,
        wctx.knobs(),
        StartRequest("w12", "work", command="true # {{prompt_file}}", repo=given[0], repos=given),
    )
    assert wait(wctx.paths.data, "w12", 30, wctx.clock) == 0
    trees = load_all(wctx, "w12")
    assert [(t.part, t.repo) for t in trees] == [("app", str(made[0])), ("app-2", str(made[1]))]
    assert git(wctx.paths.checkouts / "w12" / "app-2", "rev-parse", "--show-toplevel").strip() == (
        str(wctx.paths.checkouts / "w12" / "app-2")
    )


def test_a_resumed_worker_of_several_repos_starts_in_its_workspace_again(
    wctx: Ctx, repo: Path, lib: Path, tmp_path: Path
) -> None:
    """Comments sent to an ended worker resume it: a worker of several repos comes back in the
    folder that holds its checkouts (as it started), not in its first repository's."""
    from looop.workers.resume import resume_worker

    out = tmp_path / "where.txt"
    cfg = json.loads(wctx.paths.config.read_text())
    said = f"{{ pwd; echo \"$LOOOP_WORKSPACE\"; }} > '{out}'"
    cfg["runners"]["sh"]["resume"] = f"{said} # {{{{prompt_file}}}} {{{{session_id}}}}"
    wctx.paths.config.write_text(json.dumps(cfg))
    given = (str(repo), str(lib))
    command = "true # {{prompt_file}} {{session_id}}"  # a line with a conversation id
    start_worker(
        wctx, wctx.knobs(), StartRequest("w7", "work", command=command, repo=given[0], repos=given)
    )
    assert wait(wctx.paths.data, "w7", 30, wctx.clock) == 0
    resume_worker(wctx, wctx.knobs(), "w7", why="review comments")
    assert wait(wctx.paths.data, "w7", 30, wctx.clock) == 0
    home = wctx.paths.checkouts / "w7"
    assert out.read_text().splitlines() == [str(home), str(home)]


def test_the_mcp_start_tool_takes_a_list_of_repos_and_a_string_still(
    wctx: Ctx, repo: Path, lib: Path
) -> None:
    """`start_worker` over MCP as `worker start --repo A --repo B`: `repo` a list makes one
    worktree of each; a string is one repository as before; a bad entry is one line."""
    cfg = json.loads(wctx.paths.config.read_text())
    cfg["runners"]["sh"]["worker"] = "true # {{prompt_file}}"
    wctx.paths.config.write_text(json.dumps(cfg))

    async def body(s: ClientSession) -> None:
        bad = await s.call_tool(
            "start_worker", {"id": "m0", "prompt": "go", "repo": [str(repo), "lib"]}
        )
        assert bad.is_error and "must be an absolute path" in text(bad), text(bad)
        assert "\n" not in text(bad).strip()
        got = await s.call_tool(
            "start_worker", {"id": "m1", "prompt": "go", "repo": [str(repo), str(lib)]}
        )
        assert not got.is_error, text(got)
        got = await s.call_tool("start_worker", {"id": "m2", "prompt": "go", "repo": str(lib)})
        assert not got.is_error, text(got)

    drive(wctx, body, "--allow-actions")
    assert not (wctx.paths.checkouts / "m0").exists()
    assert [t.repo for t in load_all(wctx, "m1")] == [str(repo), str(lib)]
    assert [t.repo for t in load_all(wctx, "m2")] == [str(lib)]
    for wid in ("m1", "m2"):
        wait(wctx.paths.data, wid, 30, wctx.clock)


def test_ls_shows_every_repos_branch_compactly_and_all_of_them_in_json(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    """`looop ls`' BRANCH of a worker of several repositories: the first's and how many more;
    --json lists each checkout's folder and branch. A one-repo worker's is its branch alone."""
    start_both(wctx, tmp_path, "w2", [repo, lib])
    start(wctx, tmp_path, "w3", lib)
    code, out, err = cli("ls", "-a")
    assert code == 0, err
    row = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert row["w2"].rstrip().endswith("looop/w2 (+1)"), out
    assert row["w3"].rstrip().endswith("looop/w3"), out
    code, out, err = cli("ls", "-a", "--json")
    assert code == 0, err
    got = {r["id"]: r for r in json.loads(out)}
    assert got["w2"]["branch"] == "looop/w2"
    assert got["w2"]["branches"] == [
        {"name": repo.name, "branch": "looop/w2"},
        {"name": "lib", "branch": "looop/w2"},
    ]
    assert got["w3"]["branches"] == [{"name": "lib", "branch": "looop/w3"}]
