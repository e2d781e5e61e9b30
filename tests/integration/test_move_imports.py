"""The moves a person runs now and then load only what they do (issue 53: each under 150 ms
whole): `looop kill` loads its own move, not the launch, the shell gate or the other moves; a
`worker start` loads the start's move, not the others; a beat whose world did not change
loads no move and not the sandbox room. Each runs as a whole command in a fresh interpreter
that then reports what it had loaded (a guard, not a timing test)."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.seed import ensure_data_dir
from looop.sessions.client import kill
from looop.sessions.state import SessionError

pytestmark = pytest.mark.process

PROBE = """
import sys
from looop.verbs.console import run as main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + repr([code, sorted(sys.modules)]) + "\\n")
"""
NOOP = 'printf \'%s\' \'{"action":"noop","journal":"t"}\' > .decision.json'
START = ["--no-sandbox", "--command", "tail -f {{prompt_file}}", "hi"]
MOVES = {f"looop.act.moves.{m}" for m in ("files", "notes", "runshell", "sessions")}


def _run(data: Path, args: list[str]) -> tuple[object, set[str], str]:
    env = {"PATH": os.environ.get("PATH", "/bin"), "HOME": str(data), "LOOOP_DATA_DIR": str(data)}
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )
    head, sep, tail = r.stderr.rpartition("\nMODULES ")
    assert sep, r.stderr
    rc, mods = ast.literal_eval(tail)
    return rc, set(mods), head


def _home(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    ensure_data_dir(Paths.at(data))
    cfg = {"tick_command": NOOP, "worker_command": "tail -f {{prompt_file}}"}
    (data / "config.json").write_text(json.dumps(cfg))
    return data


@pytest.mark.timeout(120)
def test_a_kill_and_a_start_load_their_own_move_only(tmp_path: Path) -> None:
    data = _home(tmp_path)
    try:
        rc, started, said = _run(data, ["worker", "start", "w1", *START])
        assert rc == 0, said
        rc, killed, said = _run(data, ["kill", "w1"])
        assert rc == 0, said
    finally:
        with contextlib.suppress(SessionError):
            kill(data, "w1")
    assert "looop.act.moves.workers" in started
    assert sorted(started & (MOVES | {"looop.act.moves.kill"})) == []
    assert "looop.act.moves.kill" in killed
    heavy = MOVES | {"looop.act.moves.workers", "looop.workers.launch", "looop.act.shellgate"}
    assert sorted(killed & heavy) == []


@pytest.mark.timeout(120)
def test_a_beat_whose_world_did_not_change_loads_no_move(tmp_path: Path) -> None:
    data = _home(tmp_path)
    rc, decided, said = _run(data, ["tick"])
    assert rc == 0 and "noop" in said, said
    assert "looop.act.moves.notes" in decided  # the probe sees a move when one is made
    rc, skipped, said = _run(data, ["tick"])
    assert rc == 0 and "world unchanged" in said, said
    loaded = sorted(m for m in skipped if m.startswith("looop.act.moves."))
    assert loaded == []
    assert sorted(skipped & {"looop.sandbox.worker", "looop.sandbox.srt", "tomllib"}) == []
