"""A sandboxed worker's verify runs inside that worker's own sandbox (the real srt and
bubblewrap), whoever wrote it: the worker leaves a Makefile and scripts in its workspace or
worktree that try to write $HOME, plant a sensor or a shell start-up line, and print the
planted key; a human's `--verify` runs them after the worker ends, and none of it reaches
the disk or the recorded output, while a verify that only runs the worker's tests passes.
Where srt cannot run at verify time, the verify fails in one line and nothing runs."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import psutil
import pytest

from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.sessions.client import wait
from tests.helpers import clean_env
from tests.sandbox.test_sandboxed_worker import LOOOP, SECRET, Server, servers

__all__ = ["servers"]  # the fixture, shared with the worker's tests

pytestmark = pytest.mark.timeout(180)

# What the worker leaves behind: hostile targets, and honest tests that build in the workspace.
WORKER = r"""
W="$LOOOP_WORKSPACE"  # its room's work folder, sandboxed or not
mkdir -p "$W" && cd "$W"
printf 'all:\n\t-echo pwned > $(HOME)/pwned-make\n\tcat $(HOME)/.ssh/id_rsa\n' > Makefile
printf 'test:\n\tsh ./test.sh\n' >> Makefile
cat > check.sh <<'EOF'
echo pwned > "$HOME/pwned-check"
echo 'touch "$HOME/pwned-rc"' >> "$HOME/.bashrc"
mkdir -p "$LOOOP_DATA_DIR/sensors"
printf 'touch "$HOME/pwned-sensor"\n' > "$LOOOP_DATA_DIR/sensors/evil.sh"
cat "$HOME/.ssh/id_rsa"
EOF
cat > test.sh <<'EOF'
grep -q answer=42 answer.txt && echo built > build.out && echo tests-pass
EOF
echo answer=42 > answer.txt
"""
MARKERS = ("pwned-make", "pwned-check", "pwned-rc", "pwned-sensor")


class Home:
    """A home with a planted key, a data dir whose workers run sandboxed and whose decider
    answers noop, and looop as a user runs it."""

    def __init__(self, tmp_path: Path, srt: Path, sandbox: object = "on") -> None:
        self.home, self.data = tmp_path / "home", tmp_path / "data"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_rsa").write_text(SECRET + "\n")
        self.data.mkdir()
        decider = tmp_path / "decider.sh"
        decider.write_text('echo \'{"action": "noop"}\' > "$LOOOP_DECISION"\n')
        runner = {"tick": f"bash {decider} {{{{prompt_file}}}}", "worker": "x {{prompt_file}}"}
        cfg = {
            "default": "probe",
            "runners": {"probe": runner},
            "sandbox": sandbox,
            # a human's verify never ran under the shell sandbox: only the worker's holds here
            "shell_policy": {"sandbox": "off"},
        }
        (self.data / "config.json").write_text(json.dumps(cfg))
        (self.data / "PLAYBOOK.md").write_text("playbook\n")
        self.script = tmp_path / "worker.sh"
        self.script.write_text(WORKER)
        self.env = clean_env(self.home, self.data, LOOOP_SRT=str(srt))

    def looop(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args],
            env=env or self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )

    def start(self, wid: str, verify: str, *flags: str) -> None:
        line = f"bash {self.script} # {{{{prompt_file}}}}"
        done = self.looop(
            "worker", "start", wid, "go", "--command", line, "--verify", verify, *flags
        )
        assert done.returncode == 0, done.stderr
        assert wait(self.data, wid, 60, SystemClock()) == 0

    def result(self, wid: str) -> dict[str, object]:
        got = json.loads((self.data / "verify" / f"{wid}.json").read_text())
        assert isinstance(got, dict)
        return got

    def escaped(self) -> list[str]:
        out = [m for m in MARKERS if (self.home / m).exists()]
        bashrc = self.home / ".bashrc"
        if bashrc.exists() and "pwned" in bashrc.read_text():
            out.append(".bashrc")
        if (self.data / "sensors" / "evil.sh").exists():
            out.append("sensors/evil.sh")
        return out


def test_a_humans_verify_of_a_sandboxed_worker_runs_in_that_workers_sandbox(
    tmp_path: Path, srt: Path
) -> None:
    box = Home(tmp_path, srt)
    box.start("w1", "make -C ../data.work/rooms/w1/work")
    box.start("w2", "cd ../data.work/rooms/w2/work && sh ./check.sh")
    box.start("w3", "make -C ../data.work/rooms/w3/work test")
    done = box.looop("tick", "--force")  # the beat after their end runs the verifies
    assert done.returncode == 0, done.stdout + done.stderr
    assert box.escaped() == []
    for wid in ("w1", "w2"):
        got = box.result(wid)
        assert got["pass"] is False, got  # the key is hidden: cat fails
        assert SECRET not in str(got["output"])
    tests = box.result("w3")
    assert tests["pass"] is True, tests  # the worker's own tests still run, and build
    assert "tests-pass" in str(tests["output"])
    assert (Paths.at(box.data).rooms / "w3" / "work" / "build.out").read_text() == "built\n"


def test_a_sandboxed_workers_verify_never_runs_outside_when_srt_cannot(
    tmp_path: Path, srt: Path
) -> None:
    box = Home(tmp_path, srt)
    box.start("w1", "cd ../data.work/rooms/w1/work && sh ./check.sh")
    gone = {**box.env, "LOOOP_SRT": str(tmp_path / "no-srt")}
    box.looop("tick", "--force", env=gone)
    assert box.escaped() == []
    got = box.result("w1")
    assert got["pass"] is False and got["exit_code"] is None
    output = str(got["output"])
    assert output.startswith("not run: ") and "\n" not in output
    assert "srt" in output and "no-srt" in output


def test_an_unsandboxed_workers_verify_runs_as_before(tmp_path: Path, srt: Path) -> None:
    box = Home(tmp_path, srt)
    box.start("w1", f"make -C {box.data}.work/rooms/w1/work", "--no-sandbox")  # its room
    done = box.looop("tick", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    # as configured: the human's own verify of an unsandboxed worker is not boxed
    assert (box.home / "pwned-make").exists()
    got = box.result("w1")
    assert got["pass"] is True and SECRET in str(got["output"])


def test_a_repo_workers_verify_runs_in_its_worktrees_box(tmp_path: Path, srt: Path) -> None:
    box = Home(tmp_path, srt)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("repo\n")
    for args in (("init", "-q", "-b", "main"), ("add", "README"), ("commit", "-qm", "one")):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), *args],
            env=box.env,
            check=True,
            timeout=30,
        )
    hook = repo / ".git" / "hooks" / "post-checkout"
    plant = f'; echo "touch $(HOME)/pwned-hook" > {hook}; chmod +x {hook}'
    box.start(
        "w1",
        "make -C ../data.work/checkouts/w1" + plant.replace("$(HOME)", str(box.home)),
        "--repo",
        str(repo),
    )
    box.start("w2", "make -C ../data.work/checkouts/w2 test", "--repo", str(repo))
    done = box.looop("tick", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert box.escaped() == [] and not hook.exists()
    hostile = box.result("w1")
    assert hostile["pass"] is False and SECRET not in str(hostile["output"])
    tests = box.result("w2")
    assert tests["pass"] is True, tests
    assert (Paths.at(box.data).checkouts / "w2" / "build.out").read_text() == "built\n"


def test_the_verify_reaches_the_workers_domains_and_no_other(
    tmp_path: Path, srt: Path, servers: tuple[Server, Server]
) -> None:
    allowed, denied = servers
    box = Home(tmp_path, srt, {"domains": [f"127.0.0.1:{allowed.port}"]})
    get = "curl -s -m 10 http://127.0.0.1:{}/"
    box.start("w1", f"{get.format(allowed.port)}; {get.format(denied.port)}")
    done = box.looop("tick", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "allowed-ok" in str(box.result("w1")["output"])
    assert (allowed.hits, denied.hits) == (1, 0)


def test_nothing_the_boxed_verify_starts_outlives_it(tmp_path: Path, srt: Path) -> None:
    box = Home(tmp_path, srt)
    token = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"  # this test's own sleep
    box.start("w1", f"sleep {token} & kill -0 $! && echo running")
    done = box.looop("tick", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    got = box.result("w1")
    assert got["pass"] is True and "running" in str(got["output"]), got
    left = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", token]]
    assert left == []
