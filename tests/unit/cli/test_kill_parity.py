"""`looop kill` served click-free and by click
is one behaviour: the same output, exit code, journal and the worker's end, for good and bad
argvs; the fast parser takes only the plain spellings; and a kill of a worker here never loads
the SSH and Kubernetes rooms."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from looop.act.moves.far import remote_record
from looop.remote.hosts import record_file
from looop.sessions.spawner import spawn
from looop.sessions.state import get_session, list_sessions
from looop.verbs.kill import parse_fast
from tests.clocks import FixedClock
from tests.helpers import clean_env, run_cli

CASES: list[list[str]] = [
    ["kill", "w1"],
    ["kill", "w1", "--reason", "done here"],
    ["kill", "--reason=done", "w1", "-j", "stopped by hand"],
    ["worker", "kill", "w1"],
    ["w", "kill", "w1", "--journal", "j"],
    ["kill", "nosuch"],
    ["kill", "pulse"],
    ["kill", "bad id"],
    ["kill"],
    ["kill", "w1", "--reason"],
    ["kill", "w1", "--reason", "a", "--reason", "b"],
    ["kill", "w1", "w2"],
    ["kill", "--help"],
    ["kill", "w1", "--color", "red"],
]


def _run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    fast: bool,
) -> tuple[int, str, str, str, list[str]]:
    data = tmp_path / ("fast" if fast else "slow") / "data"
    env = clean_env(tmp_path, data)
    assert run_cli(capsys, "init", env=env, clock=FixedClock())[0] == 0
    spawn(data, "w1", ["cat"], cwd=data, env=env)
    with monkeypatch.context() as m:
        if not fast:
            m.setattr("looop.verbs.table._fast", lambda *a: False)
        code, out, err = run_cli(capsys, *argv, env=env, clock=FixedClock())
    live = sorted(s.id for s in list_sessions(data) if s.alive)
    if "w1" in live:
        from looop.sessions.client import kill

        kill(data, "w1")
    journal = (data / "journal.md").read_text() if (data / "journal.md").exists() else ""
    shutil.rmtree(data.parent)
    return code, out.replace(str(data), "DATA"), err.replace(str(data), "DATA"), journal, live


@pytest.mark.process
@pytest.mark.timeout(120)
@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c) for c in CASES])
def test_fast_and_click_faces_agree(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    fast = _run(tmp_path, capsys, monkeypatch, argv, fast=True)
    slow = _run(tmp_path, capsys, monkeypatch, argv, fast=False)
    assert fast == slow


@pytest.mark.unit
def test_the_fast_parser_takes_the_plain_spellings_only() -> None:
    assert parse_fast(["kill", "w1"]) == {"id": "w1", "reason": ""}
    assert parse_fast(["worker", "kill", "w1", "--reason=r", "-j", "j"]) == {
        "id": "w1",
        "reason": "r",
        "journal": "j",
    }
    for argv in (
        ["kill"],
        ["kill", "--help"],
        ["kill", "w1", "w2"],
        ["kill", "w1", "--reason"],
        ["kill", "w1", "--reason", "-x"],
        ["kill", "w1", "-j", "a", "--journal", "b"],
        ["kill", "w1", "--force"],
        ["worker", "start", "w1"],
        ["tell", "w1", "x"],
    ):
        assert parse_fast(argv) is None, argv


@pytest.mark.unit
def test_a_remote_workers_record_is_where_the_hosts_room_keeps_it(tmp_path: Path) -> None:
    # the kill looks for it with one stat before loading the hosts' rooms
    assert remote_record(tmp_path, "w7") == record_file(tmp_path, "w7")


@pytest.mark.process
@pytest.mark.timeout(60)
def test_a_kill_of_a_worker_here_loads_no_hosts_room(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(tmp_path, data)  # in this process, not a host
    looop = str(Path(sys.executable).with_name("looop"))
    subprocess.run([looop, "init"], env=env, check=True, capture_output=True)
    spawn(data, "w1", ["cat"], cwd=data, env=env)
    got = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "looop", "kill", "w1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert got.returncode == 0, got.stderr[-500:]
    loaded = {ln.rsplit("|", 1)[-1].strip() for ln in got.stderr.splitlines() if "|" in ln}
    assert "looop.act.executor" in loaded  # it really ran the move
    assert not {m for m in loaded if m.startswith(("looop.remote.ssh", "looop.remote.kube"))}
    assert not get_session(data, "w1").alive
