"""The sensor pack (`looop sensor add KIND …`): each recipe written by the CLI, run by the real
sensor runner (`looop sensor run`) against real parts — a git repository with a bare upstream, a
local HTTP server, a real test command, the real df — its signal the same across two runs when
nothing changed and different when the state did."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli

pytestmark = pytest.mark.timeout(120)

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "T",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "T",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV, "HOME": str(cwd)}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def _reading(cli: Cli, name: str, **env: str) -> dict[str, Any]:
    code, out, err = cli("sensor", "run", name, "--json", env_extra=env or None)
    assert code == 0, (out, err)
    row = json.loads(out.splitlines()[0])
    assert row["ok"] is True, row
    reading: dict[str, Any] = row["reading"]
    return reading


def _signal(cli: Cli, name: str, **env: str) -> Any:
    return _reading(cli, name, **env)["signal"]


def _add(cli: Cli, *args: str) -> None:
    code, out, err = cli("sensor", "add", *args)
    assert code == 0, (out, err)


# ---- git ---------------------------------------------------------------------------------------


def test_git_sensor_reads_branch_dirty_ahead_behind(tmp_path: Path, cli: Cli) -> None:
    bare, mine, theirs = tmp_path / "up.git", tmp_path / "mine", tmp_path / "theirs"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(tmp_path, "clone", "-q", str(bare), str(mine))
    _git(mine, "checkout", "-q", "-b", "main")
    (mine / "a.txt").write_text("one\n")
    _git(mine, "add", "a.txt")
    _git(mine, "commit", "-q", "-m", "first")
    _git(mine, "push", "-q", "-u", "origin", "main")
    _add(cli, "git", "--repo", str(mine), "--fetch")

    first = _signal(cli, "git")
    assert first["branch"] == "main" and first["upstream"] == "origin/main"
    assert (first["dirty"], first["ahead"], first["behind"]) == (False, 0, 0)
    assert _signal(cli, "git") == first  # nothing changed: the same signal
    detail = _reading(cli, "git")["detail"]
    assert detail["subject"] == "first"

    (mine / "a.txt").write_text("two\n")
    assert _signal(cli, "git")["dirty"] is True
    _git(mine, "commit", "-q", "-am", "second")
    local = _signal(cli, "git")
    assert (local["dirty"], local["ahead"], local["behind"]) == (False, 1, 0)
    assert local["head"] != first["head"]

    _git(tmp_path, "clone", "-q", str(bare), str(theirs))
    (theirs / "b.txt").write_text("theirs\n")
    _git(theirs, "add", "b.txt")
    _git(theirs, "commit", "-q", "-m", "theirs")
    _git(theirs, "push", "-q", "origin", "main")
    both = _signal(cli, "git")  # --fetch: the upstream's new commit is seen
    assert (both["ahead"], both["behind"]) == (1, 1)


def test_git_sensor_names_its_branch_in_detail_but_not_a_detached_head(
    tmp_path: Path, cli: Cli
) -> None:
    """The branch checked out is in detail too: the news of the worker on it (issue 57)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "looop/w1")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    _add(cli, "git", "--repo", str(repo))
    assert _reading(cli, "git")["detail"]["branch"] == "looop/w1"
    _git(repo, "checkout", "-q", "--detach")
    got = _reading(cli, "git")
    assert got["signal"]["branch"] == "(detached)" and "branch" not in got["detail"]


def test_git_sensor_outside_a_repository_fails_saying_so(tmp_path: Path, cli: Cli) -> None:
    _add(cli, "git", "--repo", str(tmp_path))
    code, out, _ = cli("sensor", "run", "git", "--json")
    row = json.loads(out.splitlines()[0])
    assert code == 1 and row["ok"] is False


# ---- http --------------------------------------------------------------------------------------


class _Site:
    def __init__(self) -> None:
        self.status = 200


@pytest.fixture
def site() -> Iterator[tuple[_Site, str]]:
    state = _Site()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_http_sensor_reads_status_and_latency_bucket(site: tuple[_Site, str], cli: Cli) -> None:
    state, url = site
    _add(cli, "http", "--url", url)
    up = _signal(cli, "http")
    assert up == {"status": 200, "latency": "fast"}
    assert _signal(cli, "http") == up
    assert _reading(cli, "http")["detail"]["url"] == url
    state.status = 503
    assert _signal(cli, "http") == {"status": 503, "latency": "fast"}


def test_http_sensor_says_down_when_nothing_answers(tmp_path: Path, cli: Cli) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _add(cli, "http", "--url", f"http://127.0.0.1:{port}/")
    assert _signal(cli, "http") == {"status": "down", "latency": None}


# ---- disk --------------------------------------------------------------------------------------


def test_disk_sensor_buckets_usage(tmp_path: Path, cli: Cli) -> None:
    _add(cli, "disk", "--path", str(tmp_path))
    real = _reading(cli, "disk")
    pct = real["detail"]["used_pct"]
    low = pct // 10 * 10
    want = "95-100%" if pct >= 95 else "90-95%" if pct >= 90 else f"{low}-{low + 10}%"
    assert real["signal"] == {"path": str(tmp_path), "used": want}
    assert _signal(cli, "disk") == real["signal"]
    # df as a fuller disk would answer it: the bucket moves at its line, not before
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    df = bin_dir / "df"
    df.write_text(
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        'echo "/dev/x 1000 $(cat "$(dirname "$0")/pct") 10 $(cat "$(dirname "$0")/pct")% /x"\n'
    )
    df.chmod(0o755)
    path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    (bin_dir / "pct").write_text("91")
    assert _signal(cli, "disk", PATH=path)["used"] == "90-95%"
    (bin_dir / "pct").write_text("94")
    assert _signal(cli, "disk", PATH=path)["used"] == "90-95%"
    (bin_dir / "pct").write_text("96")
    assert _signal(cli, "disk", PATH=path)["used"] == "95-100%"


# ---- file --------------------------------------------------------------------------------------


def test_file_sensor_changes_with_content_not_with_a_touch(tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("one\n")
    _add(cli, "file", "--path", str(target))
    first = _signal(cli, "file")
    assert first["kind"] == "file" and first["path"] == str(target)
    assert _reading(cli, "file")["detail"]["size"] == 4
    os.utime(target, (1, 1))
    assert _signal(cli, "file") == first
    target.write_text("two\n")
    second = _signal(cli, "file")
    assert second != first
    target.unlink()
    assert _signal(cli, "file")["kind"] == "missing"


def test_file_sensor_on_a_directory_sees_a_new_entry(tmp_path: Path, cli: Cli) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _add(cli, "file", "--path", str(inbox), "--name", "inbox")
    first = _signal(cli, "inbox")
    assert first["kind"] == "dir" and _signal(cli, "inbox") == first
    assert _reading(cli, "inbox")["detail"]["entries"] == 0
    (inbox / "new.txt").write_text("x")
    assert _signal(cli, "inbox") != first
    assert _reading(cli, "inbox")["detail"]["entries"] == 1


# ---- tests -------------------------------------------------------------------------------------


def test_tests_sensor_reads_pass_fail_and_the_failing_names(tmp_path: Path, cli: Cli) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    suite = proj / "test_suite.py"
    suite.write_text("def test_ok():\n    assert True\n\ndef test_math():\n    assert 1 + 1 == 2\n")
    cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    _add(cli, "tests", "--cmd", cmd, "--dir", str(proj), "--every", "600")
    text = (cli.data / "sensors" / "tests.sh").read_text()
    assert "# looop:interval=600" in text.splitlines()[1]
    green = _signal(cli, "tests")
    assert green == {"result": "pass", "failing": []}
    assert _signal(cli, "tests") == green
    suite.write_text(suite.read_text().replace("1 + 1 == 2", "1 + 1 == 3"))
    red = _reading(cli, "tests")
    assert red["signal"] == {"result": "fail", "failing": ["test_suite.py::test_math"]}
    assert red["detail"]["exit_code"] == 1 and "1 failed" in red["detail"]["tail"]
    assert _signal(cli, "tests") == red["signal"]  # the run's duration is not in the signal
    assert "branch" not in red["detail"]  # not a git checkout: no branch to name


def test_tests_sensor_names_the_branch_it_runs_on(tmp_path: Path, cli: Cli) -> None:
    """The branch checked out where the tests run is in detail: its worker's news (issue 57)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _git(proj, "init", "-q", "-b", "looop/w1")
    _add(cli, "tests", "--cmd", "exit 3", "--dir", str(proj))
    got = _reading(cli, "tests")
    assert got["signal"]["result"] == "fail" and got["detail"]["branch"] == "looop/w1"
    _git(proj, "checkout", "-q", "-b", 'odd"name')
    assert _reading(cli, "tests")["detail"]["branch"] == 'odd"name'


# ---- github (a recording stand-in for gh: no forge is reachable here) ----------------------------

_GH = """#!{python}
import json, os, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
what = "prs" if args[:2] == ["pr", "list"] else "issues"
with open(os.path.join(here, what + ".json")) as f:
    data = f.read()
jq = args[args.index("--jq") + 1]
sys.exit(subprocess.run(["jq", "-r", jq], input=data, text=True).returncode)
"""


def _pr(number: int, checks: list[dict[str, str]], review: str) -> dict[str, Any]:
    return {
        "number": number,
        "title": f"PR {number}",
        "headRefName": f"looop/w{number}",
        "isDraft": False,
        "reviewDecision": review,
        "statusCheckRollup": checks,
    }


def test_github_sensor_reads_prs_checks_reviews_and_issues(tmp_path: Path, cli: Cli) -> None:
    bin_dir = tmp_path / "gh-bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(_GH.format(python=sys.executable))
    gh.chmod(0o755)
    running = {"name": "ci", "status": "IN_PROGRESS", "conclusion": ""}
    green = {"name": "ci", "status": "COMPLETED", "conclusion": "SUCCESS"}
    red = {"name": "ci", "status": "COMPLETED", "conclusion": "FAILURE"}
    legacy_ok = {"context": "legacy", "state": "SUCCESS"}
    prs = [_pr(7, [running, legacy_ok], "REVIEW_REQUIRED"), _pr(3, [], "")]
    (bin_dir / "prs.json").write_text(json.dumps(prs))
    (bin_dir / "issues.json").write_text(json.dumps([{"number": 12, "title": "Fix it"}]))
    path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    _add(cli, "github", "--repo", "acme/shop", "--dir", str(tmp_path))

    first = _reading(cli, "github", PATH=path)
    assert first["signal"] == {
        "pull_requests": [
            {"number": 3, "branch": "looop/w3", "draft": False, "checks": "none", "review": "none"},
            {
                "number": 7,
                "branch": "looop/w7",
                "draft": False,
                "checks": "pending",
                "review": "review_required",
            },
        ],
        "assigned_issues": [12],
    }
    assert first["detail"]["assigned_issues"] == [{"number": 12, "title": "Fix it"}]
    assert first["detail"]["branch"] == ["looop/w3", "looop/w7"]  # whose news it is (issue 57)
    assert _signal(cli, "github", PATH=path) == first["signal"]
    calls = [json.loads(x) for x in (bin_dir / "calls.jsonl").read_text().splitlines()]
    assert calls[0][:2] == ["pr", "list"] and "acme/shop" in calls[0]
    assert calls[1][:2] == ["issue", "list"] and "@me" in calls[1]

    prs[1] = _pr(7, [red, legacy_ok], "CHANGES_REQUESTED")
    (bin_dir / "prs.json").write_text(json.dumps(prs))
    failed = _reading(cli, "github", PATH=path)
    seven = failed["signal"]["pull_requests"][1]
    assert (seven["checks"], seven["review"]) == ("fail", "changes_requested")
    assert failed["detail"]["pull_requests"][1]["failing_checks"] == ["ci"]

    prs[1] = _pr(7, [green, legacy_ok], "APPROVED")
    (bin_dir / "prs.json").write_text(json.dumps(prs))
    seven = _signal(cli, "github", PATH=path)["pull_requests"][1]
    assert (seven["checks"], seven["review"]) == ("pass", "approved")


def test_github_sensor_without_gh_says_so(tmp_path: Path, cli: Cli) -> None:
    bare = tmp_path / "bin"  # bash and nothing else, whatever this machine has installed
    bare.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    (bare / "bash").symlink_to(bash)
    _add(cli, "github", "--dir", str(tmp_path))
    assert _signal(cli, "github", PATH=str(bare)) == {"gh": "missing"}


# ---- the verb ----------------------------------------------------------------------------------


def test_add_list_names_every_recipe_with_an_example(cli: Cli) -> None:
    code, out, _ = cli("sensor", "add", "--list")
    assert code == 0
    for kind in ("git", "http", "disk", "file", "tests", "github"):
        assert f"looop sensor add {kind}" in out
    assert "--repo PATH" in out and "--url URL" in out


def test_add_refuses_an_existing_sensor_without_force(tmp_path: Path, cli: Cli) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _add(cli, "file", "--path", str(one))
    script = cli.data / "sensors" / "file.sh"
    before = script.read_text()
    code, _, err = cli("sensor", "add", "file", "--path", str(two))
    assert code == 1 and "exists" in err and "--force" in err
    assert script.read_text() == before
    _add(cli, "file", "--path", str(two), "--force")
    assert str(two) in script.read_text()
    code, out, _ = cli("sensor", "list")
    assert any(ln.split()[:2] == ["file", "human"] for ln in out.splitlines())  # a human's


def test_add_refuses_bad_values_in_one_line_writing_nothing(tmp_path: Path, cli: Cli) -> None:
    bad = [
        (("http", "--url", "http://a\nb"), "newline"),
        (("http", "--url", "file:///etc/passwd"), "not an http"),
        (("git", "--url", "http://a"), "does not apply"),
        (("file",), "needs --path"),
        (("nope",), "no sensor recipe"),
        (("file", "--path", "x", "--name", "../x"), "invalid sensor id"),
        (("github", "--repo", "a b"), "OWNER/NAME"),
        (("disk", "--every", "0"), "--every"),
        (("tests", "--cmd", "true\rrm -rf x"), "control character"),
    ]
    for args, why in bad:
        code, _, err = cli("sensor", "add", *args)
        assert code == 1 and why in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not list((cli.data / "sensors").glob("*.sh")) or [
        p.name for p in (cli.data / "sensors").glob("*.sh")
    ] == ["today.sh"]


def test_a_value_is_one_quoted_word_never_code(tmp_path: Path, cli: Cli) -> None:
    odd = tmp_path / "$(touch pwned)'\"; touch pwned #`touch pwned`"
    odd.write_text("x")
    _add(cli, "file", "--path", str(odd))
    got = _signal(cli, "file")
    assert got["path"] == str(odd) and got["kind"] == "file"
    assert not list(tmp_path.rglob("pwned"))  # the sensor runs in the data dir, under tmp_path


def test_a_relative_path_is_taken_from_where_the_command_runs(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "watched").write_text("x")
    monkeypatch.chdir(tmp_path)
    _add(cli, "file", "--path", "watched")
    assert _signal(cli, "file")["path"] == str(tmp_path / "watched")


# ---- init's offer ------------------------------------------------------------------------------


def test_init_offers_the_sensors_that_fit_here(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "my app"
    _git(tmp_path, "init", "-q", str(repo))
    (repo / "src").mkdir()
    bin_dir = tmp_path / "gh-bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "gh").chmod(0o755)
    monkeypatch.chdir(repo / "src")  # inside the repository, below its top
    path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    code, out, _ = cli("init", "--runner", "claude", env_extra={"PATH": path})
    assert code == 0
    assert f"looop sensor add git --repo '{repo}'" in out
    assert f"looop sensor add github --dir '{repo}'" in out
    # the offered line does what it says
    _add(cli, "git", "--repo", str(repo))
    code, out, _ = cli("init", "--runner", "claude", "--force", env_extra={"PATH": path})
    assert "sensor add git --repo" not in out  # a git sensor is there already
    assert "sensor add github" in out


def test_init_offers_nothing_where_nothing_fits(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    code, out, _ = cli("init", "--runner", "claude", env_extra={"PATH": str(bare)})
    assert code == 0 and "sensor add" not in out


def test_a_test_command_passes_the_shell_tripwire(tmp_path: Path, cli: Cli) -> None:
    """The command sits in a quoted word the script's own tripwire check cannot see into: it
    is checked by itself, as `looop sensor write` checks a script."""
    for cmd in ("make test && sudo reboot", "pytest; rm -rf ~"):
        code, _, err = cli("sensor", "add", "tests", "--cmd", cmd, "--dir", str(tmp_path))
        assert code == 1 and "tripwire" in err and len(err.strip().splitlines()) == 1, err
    assert not (cli.data / "sensors" / "tests.sh").exists()
