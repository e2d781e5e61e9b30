"""The README's short tour, run as written: every command of its two shell blocks, in order,
on a fresh HOME, with a stand-in `claude` on PATH (a decider that writes a noop, a worker that
asks a human through `looop ask`). `looop watch` is full-screen and has its own tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(180)

README = Path(__file__).resolve().parents[2] / "README.md"

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
    home, fake = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    fake.mkdir()
    claude = fake / "claude"
    claude.write_text(FAKE_CLAUDE)
    claude.chmod(0o755)
    venv_bin = Path(sys.executable).parent
    env = {
        "HOME": str(home),
        "PATH": f"{fake}:{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LOOOP_COLOR": "0",
    }
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
