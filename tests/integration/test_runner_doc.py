"""docs/RUNNERS.md's ten-line decider, run as printed: the Python block of the page is the
tick command of a real `looop tick` (a real process, a real sensor), its move lands in the
journal and its cost line in `looop cost`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env

pytestmark = pytest.mark.timeout(120)

DOC = Path(__file__).resolve().parents[2] / "docs" / "RUNNERS.md"
LOOOP = [sys.executable, "-m", "looop"]


def _decider() -> str:
    page = DOC.read_text(encoding="utf-8")
    section = page.split("## A decider in ten lines", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "docs/RUNNERS.md lost its example"
    return found.group(1)


def _looop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOOOP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _sensor(env: dict[str, str], red: bool) -> None:
    script = f'#!/usr/bin/env bash\nprintf \'{{"signal":{{"red":{str(red).lower()}}}}}\\n\'\n'
    got = subprocess.run(
        [*LOOOP, "sensor", "write", "ci", "-"],
        env=env,
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert got.returncode == 0, got.stderr


def test_the_pages_decider_drives_a_real_tick(tmp_path: Path) -> None:
    code = _decider()
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 12  # "ten lines" stays true
    decide = tmp_path / "decide.py"
    decide.write_text(code)
    data = tmp_path / "data"
    env = clean_env(tmp_path, data)
    tick = f"{shlex.quote(sys.executable)} {shlex.quote(str(decide))} {{{{prompt_file}}}}"
    init = _looop(
        env, "init", "--runner", "custom", "--tick-command", tick,
        "--worker-command", "cat {{prompt_file}}", "--no-sandbox",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    cfg = json.loads((data / "config.json").read_text())
    # the page's cost spec, as it tells the reader to declare it
    cfg["runners"]["custom"]["cost"] = {"type": "usage", "pointer": "/cost_usd", "mode": "sum"}
    (data / "config.json").write_text(json.dumps(cfg))
    _sensor(env, red=True)
    dry = _looop(env, "tick", "--dry-run")
    assert dry.returncode == 0 and '"red":true' in dry.stdout  # what the decider tests for
    beat = _looop(env, "tick")
    assert beat.returncode == 0, beat.stdout + beat.stderr
    assert "goal: CI on main is green" in (data / "goals" / "fix-ci.md").read_text()
    assert "fix-ci" in (data / "journal.md").read_text()
    spent = _looop(env, "cost")
    assert "$0.0021  (1 call)" in spent.stdout, spent.stdout
    # the world changes back: the same decider chooses a noop, and says its cost again
    _sensor(env, red=False)
    beat = _looop(env, "tick")
    assert beat.returncode == 0, beat.stdout + beat.stderr
    assert "nothing is red" in (data / "journal.md").read_text().splitlines()[-1]
    assert "$0.0042  (2 calls)" in _looop(env, "cost").stdout
