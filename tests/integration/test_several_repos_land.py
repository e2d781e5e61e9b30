"""`looop land ID` of a worker of several repositories (real git): every repository checked
before anything changes, then each landed whole under its own WAL record and journal line; a
refusal in one (its base gone, a conflict) names it and lands nothing anywhere, `--repo NAME`
lands one alone; `--pr` opens one request per repository, each body linking the others (a
recording stand-in of `gh`, its exact argv checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.act.executor import execute
from looop.act.landing import Approved, LandConflict, LandRequest, land
from looop.act.landlocal import Here
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.workers import reviewrounds
from tests.helpers import Cli
from tests.integration.test_several_repos import lib, start_both
from tests.integration.workerchange import (
    cli,
    git,
    head,
    journal,
    refused,
    repo,
    reviewed,
    stand_in,
    start,
    wctx,
    with_origin,
)

pytestmark = pytest.mark.timeout(120)
__all__ = ["cli", "lib", "repo", "wctx"]  # the fixtures this module's tests take

# gh as a recording stand-in: its argv, the body it was handed, then an address of its repo
GH = """#!/usr/bin/env python3
import glob, json, os, sys
rec = {"argv": sys.argv[1:], "cwd": os.getcwd()}
# the landing's WAL records held while it runs
rec["wal"] = [json.load(open(p)) for p in glob.glob(os.environ["GH_WAL"] + "/*.json")]
if "--body-file" in sys.argv:
    rec["body"] = open(sys.argv[sys.argv.index("--body-file") + 1]).read()
with open(os.environ["GH_RECORD"], "a") as f:
    f.write(json.dumps(rec) + "\\n")
if os.path.basename(os.getcwd()) in os.environ.get("GH_FAIL_IN", "-").split(","):
    print("GraphQL: no permission", file=sys.stderr)
    sys.exit(1)
print("https://github.example/o/" + os.path.basename(os.getcwd()).replace(" ", "-") + "/pull/1")
"""


def journal_lines(c: Ctx) -> list[str]:
    return journal(c).splitlines()


@pytest.fixture
def gh(tmp_path: Path, cli: Cli) -> Path:
    record = stand_in(tmp_path, cli, "gh", GH)
    cli.env["GH_WAL"] = str(cli.data / ".wal")
    return record


def origin_of(tmp: Path, r: Path) -> Path:
    return with_origin(tmp, r, f"{r.name}-origin.git")


def test_land_lands_each_repo_with_its_own_record_and_tidies_once_all_landed(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    home = start_both(wctx, tmp_path, "w1", [repo, lib])
    reviewed(cli, "w1")
    tips = {r: head(r, "looop/w1") for r in (repo, lib)}
    code, out, err = cli("land", "w1")
    assert code == 0, err
    for r in (repo, lib):
        assert head(r) == tips[r]  # each base fast-forwarded to its branch
        assert f"repo {r.name}: landed worker w1: looop/w1 fast-forwarded into main" in out
    lines = journal_lines(wctx)[-2:]
    assert [f"repo {r.name} ({r})" in ln for ln, r in zip(lines, (repo, lib), strict=True)] == [
        True,
        True,
    ]
    events = [json.loads(x) for x in wctx.paths.events.read_text().splitlines()]
    landed = [e for e in events if e.get("event") == "worker_landed"]
    assert [(e["repo"], e["commit"]) for e in landed] == [(str(r), tips[r]) for r in (repo, lib)]
    assert not list((wctx.paths.data / ".wal").glob("*.json"))
    assert not home.exists()  # every checkout removed, the branches kept
    assert "every base already holds its branch — nothing to land" in refused(cli, "w1")
    code, out, err = cli("land", "w1", "--json")
    assert code == 1


def test_a_base_gone_in_one_repo_lands_nothing_anywhere_until_the_other_lands_alone(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    git(repo, "branch", "release")  # the base to land into exists in one repository only
    start_both(wctx, tmp_path, "w2", [repo, lib])
    reviewed(cli, "w2")
    before = {r: head(r) for r in (repo, lib)}
    err = refused(cli, "w2", "--into", "release")
    assert "repo lib: the base branch release is gone from" in err
    assert "nothing landed in any repository" in err and f"--repo NAME ({repo.name})" in err
    assert head(repo, "release") == before[repo] and head(lib) == before[lib]
    assert not list((wctx.paths.data / ".wal").glob("*.json"))
    code, out, err = cli("land", "w2", "--into", "release", "--repo", repo.name, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert [x["name"] for x in got["repos"]] == [repo.name] and got["into"] == "release"
    assert head(repo, "release") == head(repo, "looop/w2") and head(lib) == before[lib]
    assert (wctx.paths.checkouts / "w2" / "lib").is_dir()  # not all landed: kept
    assert "has no repository 'nope' — give one of: my repo, lib" in refused(
        cli, "w2", "--repo", "nope"
    )


def test_a_conflict_in_one_repo_names_it_and_lands_nothing(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    start_both(wctx, tmp_path, "w3", [repo, lib])
    reviewed(cli, "w3")
    (lib / "README").write_text("the lib\nthe user's own line\n")
    git(lib, "commit", "-qam", "the user's own change")
    before = {r: head(r) for r in (repo, lib)}
    err = refused(cli, "w3", "--merge")
    assert "repo lib: worker w3's branch conflicts with main in README" in err
    assert "nothing landed in any repository" in err
    assert head(repo) == before[repo] and head(lib) == before[lib]
    # the faces offer the conflict back as a comment: it names the checkout
    with pytest.raises(LandConflict) as e:
        seen = Approved(reviewrounds.seen(wctx, "w3"))
        land(Here(wctx, "w3"), wctx.knobs(), LandRequest("user (test)", seen, "merge"))
    assert e.value.comment == "in lib/: merge main into your branch: conflicts in README"


def test_repo_on_a_one_repo_worker_is_refused(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w4", repo)
    reviewed(cli, "w4")
    assert "works in one repository — leave --repo out" in refused(cli, "w4", "--repo", "x")


def test_pr_opens_one_request_per_repo_and_each_body_links_the_others(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path, gh: Path
) -> None:
    origins = {r: origin_of(tmp_path, r) for r in (repo, lib)}
    start_both(wctx, tmp_path, "w5", [repo, lib])
    reviewed(cli, "w5")
    code, out, err = cli("land", "w5", "--pr")
    assert code == 0, err
    urls = {r: f"https://github.example/o/{r.name.replace(' ', '-')}/pull/1" for r in (repo, lib)}
    for r in (repo, lib):
        assert head(origins[r], "looop/w5") == head(r, "looop/w5")
        assert (
            f"repo {r.name}: pushed looop/w5 and opened a pull request into main: {urls[r]}" in out
        )
    create_app, create_lib, edit_app = [json.loads(x) for x in gh.read_text().splitlines()]
    for rec, r in ((create_app, repo), (create_lib, lib)):
        assert rec["cwd"] == str(r)
        assert rec["argv"][:-1] == [
            "pr", "create", "--head", "looop/w5", "--base", "main",
            "--title", f"change {r.name}", "--body-file",
        ]  # fmt: skip
    # the first is opened before the second has an address; the second links the first;
    # then the first is told the second's
    assert "`lib`" in create_app["body"] and "its pull request follows" in create_app["body"]
    assert urls[repo] in create_lib["body"] and "this pull request" in create_lib["body"]
    assert edit_app["cwd"] == str(repo)
    assert edit_app["argv"][:3] == ["pr", "edit", urls[repo]] and edit_app["argv"][3] == (
        "--body-file"
    )
    assert urls[lib] in edit_app["body"] and "I changed README in both." in edit_app["body"]
    assert not Path(edit_app["argv"][4]).exists()
    assert sum("as pull request" in ln for ln in journal_lines(wctx)) == 2
    # each repository's landing held its own WAL record while it ran
    for rec, r in ((create_app, repo), (create_lib, lib)):
        (wal,) = rec["wal"]
        assert (
            wal["action"] == "land" and wal["fingerprint"] == f"w5:{r.name}:{head(r, 'looop/w5')}"
        )
        assert f"land worker w5 repo {r.name} (looop/w5 into main, pr)" == wal["summary"]
    assert not list((wctx.paths.data / ".wal").glob("*.json"))


def test_a_pr_failing_in_the_second_repo_says_what_landed_and_how_to_go_on(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path, gh: Path
) -> None:
    for r in (repo, lib):
        origin_of(tmp_path, r)
    start_both(wctx, tmp_path, "w6", [repo, lib])
    reviewed(cli, "w6")
    cli.env["GH_FAIL_IN"] = "lib"
    err = refused(cli, "w6", "--pr")
    assert "repo lib: gh failed (exit 1): GraphQL: no permission" in err
    assert f"landed before it: {repo.name}" in err
    assert "`looop land w6 --pr --repo lib` opens its request once fixed" in err
    assert sum("as pull request" in ln for ln in journal_lines(wctx)) == 1
    cli.env["GH_FAIL_IN"] = "-"
    code, out, err = cli("land", "w6", "--pr", "--repo", "lib")
    assert code == 0 and "repo lib: pushed looop/w6" in out, err


def test_a_proposed_landing_of_several_is_answered_once_every_repo_landed(
    wctx: Ctx, cli: Cli, repo: Path, lib: Path, tmp_path: Path
) -> None:
    """The decider's proposal carries the change across both; `--repo NAME` landing one alone
    leaves it waiting; landing the rest answers it with each repository's commit."""
    start_both(wctx, tmp_path, "w9", [repo, lib])
    reviewed(cli, "w9")
    move = {"action": "propose_land", "id": "w9", "reason": "both done"}
    execute(wctx, wctx.knobs(), decision_from_obj(move))
    ask = json.loads((wctx.paths.asks / "w9-1.json").read_text())
    assert ask["land"]["repos"] == [repo.name, "lib"]
    assert ask["land"]["stat"] == "2 commit(s), 2 file(s) +2 -0"
    assert f"looop/w9 in {repo.name}, lib" in ask["prompt"]
    code, _, err = cli("land", "w9", "--repo", "lib")
    assert code == 0, err
    assert not (wctx.paths.answers / "w9-1.json").exists()  # one of two: still waiting
    code, _, err = cli("land", "w9")
    assert code == 0, err
    said = json.loads((wctx.paths.answers / "w9-1.json").read_text())["answer"]
    assert said == f"landed: {repo.name}: main at {head(repo)}"
