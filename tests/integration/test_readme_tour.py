"""The README's start and its short tour, run as written: every command of their shell blocks,
in order, on a fresh HOME, with a stand-in `claude` on PATH (a decider that writes a noop, a
worker that asks a human through `looop ask`). `looop watch` is full-screen and has its own
tests; `make demo` is `looop demo` in a .venv, run here on this interpreter's looop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

FAKE_CLAUDE = """#!/bin/sh
# a stand-in for the claude CLI: `-p` decides (reads the prompt, writes one noop), anything
# else is a worker that asks a human, then waits for more input
case "$1" in
  -p) cat >/dev/null; echo '{"action":"noop","reason":"tour"}' > .decision.json ;;
  *) echo "worker ready"
     answer=$(looop ask --prompt "ship it?" --options yes,no)
     echo "human said: $answer"
     while read -r line; do echo "got: $line"; done ;;
esac
"""


def _tour_blocks() -> list[str]:
    text = README.read_text()
    tour = text[text.index("## A short tour") :]
    return re.findall(r"```sh\n(.*?)```", tour, re.S)


def _start_block() -> list[str]:
    """The lines of the README's start: the one shell block of its `## Start` section."""
    text = README.read_text()
    m = re.search(r"^## Start[^\n]*\n(.*?)(?=^## )", text, re.S | re.M)
    assert m is not None, "the README lost its start section"
    blocks = re.findall(r"```sh\n(.*?)```", m.group(1), re.S)
    assert len(blocks) == 1, "the start is one shell block"
    return [ln for ln in blocks[0].splitlines() if ln.strip()]


def _home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh HOME and the environment a reader's shell has: the stand-in claude first."""
    home, fake = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    fake.mkdir()
    claude = fake / "claude"
    claude.write_text(FAKE_CLAUDE)
    claude.chmod(0o755)
    # the README's reader has used claude: where srt runs, workers are boxed, and a box
    # refuses a claude never set up outside it (runners/claude.py first_run)
    (home / ".claude.json").write_text('{"hasCompletedOnboarding": true}')
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text('{"skipDangerousModePermissionPrompt": true}')
    venv_bin = Path(sys.executable).parent
    env = {
        "HOME": str(home),
        "PATH": f"{fake}:{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LOOOP_COLOR": "0",
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],  # the run's own hosts
    }
    return home, env


def _run(cmd: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", cmd],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _await_ask(env: dict[str, str], cwd: Path, ask_id: str, timeout: float = 30) -> None:
    """Until the worker's ask is pending (it starts when the worker runs)."""

    def pending() -> bool:
        r = _run("looop asks --json", env, cwd)
        return r.returncode == 0 and any(a.get("id") == ask_id for a in json.loads(r.stdout))

    wait_until(pending, timeout, f"ask {ask_id}")


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = _tour_blocks()
    assert len(blocks) == 2, "the tour has two shell blocks"
    home, env = _home(tmp_path)
    cwd = tmp_path
    try:
        # block 1: `. .venv/bin/activate` is this interpreter's bin on PATH; the rest verbatim
        first = "\n".join(
            ln for ln in blocks[0].splitlines() if not ln.startswith(". .venv/bin/activate")
        )
        r = _run(first, env, cwd)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "Traceback" not in out
        assert "pulse started" in out and "write-goal ship" in out
        assert "noop" in out  # the pulse decided once, through the stand-in claude
        # block 2, line by line: a worker runs, is watched, driven, asks, and is answered
        for line in blocks[1].splitlines():
            if not line.strip() or line.startswith("looop watch"):
                continue
            if "looop answer fix-ci-1" in line:
                _await_ask(env, cwd, "fix-ci-1")
            r = _run(line, env, cwd)
            out = r.stdout + r.stderr
            assert r.returncode == 0, (line, out)
            assert "Traceback" not in out, line
        # the worker's `looop ask` returns the human's answer on its stdout
        r = _run("looop expect fix-ci 'human said: yes' --timeout 20", env, cwd)
        assert r.returncode == 0, _run("looop log fix-ci", env, cwd).stdout
    finally:
        _run("looop down", env, cwd)
    crash = home / ".local" / "state" / "looop" / "crash"
    assert not crash.exists() or not list(crash.iterdir())


def _dashboard(url: str) -> str:
    """The page the printed link opens, as a browser gets it (the token becomes a cookie)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(url, timeout=20) as r:
        assert r.status == 200
        return str(r.read().decode())


def test_the_readme_start_runs_as_written(tmp_path: Path) -> None:
    lines = _start_block()
    assert [ln.split()[0] for ln in lines[:2]] == ["make", "."]  # the demo, then its .venv
    assert "\t$(BIN)/looop demo\n" in (ROOT / "Makefile").read_text()  # make demo = looop demo
    home, env = _home(tmp_path)
    cwd = tmp_path
    try:
        for line in lines:
            if line.startswith(". .venv/bin/activate") or line.startswith("looop watch"):
                continue
            if line.startswith("make demo"):
                line = "looop demo --fast --no-keep"
            r = _run(line, env, cwd)
            out = r.stdout + r.stderr
            assert r.returncode == 0, (line, out)
            assert "Traceback" not in out, line
            if line.startswith("looop demo"):
                assert "journal.md — one line per executed move" in out
            if line.startswith("looop init"):  # a port of its own: the suite runs in parallel
                config = home / ".local" / "state" / "looop" / "config.json"
                raw = json.loads(config.read_text())
                config.write_text(json.dumps({**raw, "web": {"port": 0}}))
            if line.startswith("looop up --web"):
                url = next(w for w in r.stdout.split() if "/?token=" in w)
                assert "pulse started" in r.stdout
                assert "<title>looop" in _dashboard(url)
        worker = re.search(r"looop worker start (\S+)", "\n".join(lines))
        assert worker is not None, "the start starts no worker"
        listed = _run("looop ls", env, cwd).stdout
        assert re.search(rf"^{worker.group(1)}\s+\S+\s+running", listed, re.M), listed
    finally:
        _run("looop down", env, cwd)
    crash = home / ".local" / "state" / "looop" / "crash"
    assert not crash.exists() or not list(crash.iterdir())
