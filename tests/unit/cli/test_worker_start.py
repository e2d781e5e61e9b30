"""`looop worker start` starts a worker and says so in two lines; its start record keeps what
a later resume needs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from looop.sessions.client import kill
from looop.sessions.state import list_sessions
from tests.clocks import FixedClock
from tests.helpers import clean_env, run_cli

pytestmark = [pytest.mark.timeout(120), pytest.mark.process]  # real workers start

S600 = "sleep 600 # {{prompt_file}}"  # takes no brief: it names the file in a comment

START = ["worker", "start", "w1", "--command", S600, "ship it"]
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def _files(data: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in sorted(data.rglob("*")):
        rel = p.relative_to(data).as_posix()
        if rel.startswith(("sessions", ".", "runs")) or not p.is_file():
            continue
        text = re.sub(r"\.tmp\.\d+\.[0-9a-f]{6}", ".tmp.N", p.read_text(errors="replace"))
        out[rel] = re.sub(_UUID, "UUID", text)  # a worker's conversation id is minted fresh
    return out


def _run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> tuple[int, str, str, dict[str, str], list[str]]:
    data = tmp_path / "home" / "data"
    env = clean_env(tmp_path, data)
    assert run_cli(capsys, "init", env=env, clock=FixedClock())[0] == 0
    code, out, err = run_cli(capsys, *argv, env=env, clock=FixedClock())
    live = sorted(s.id for s in list_sessions(data) if s.alive)
    for sid in live:
        kill(data, sid)
    err = err.replace(str(data), "DATA")
    out = out.replace(str(data), "DATA")
    files = {k: v.replace(str(data), "DATA") for k, v in _files(data).items()}
    shutil.rmtree(data.parent)
    return code, out, err, files, live


def test_a_worker_start_really_starts_a_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, files, live = _run(tmp_path, capsys, START)
    assert code == 0, err
    assert out.startswith("✓ worker · ") and "looop attach w1" in out
    assert live == ["w1"]
    assert "prompts/w1.md" in files and "ship it" in files["prompts/w1.md"]


def test_steerable_is_kept_in_the_start_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["worker", "start", "w1", "--steerable", "--command", S600, "go"]
    code, _, err, files, _ = _run(tmp_path, capsys, argv)
    assert code == 0, err
    assert '"steerable":true' in files["resume/w1.json"]
    code, _, err, files, _ = _run(tmp_path, capsys, argv[:3] + argv[4:])
    assert code == 0, err
    assert '"steerable":false' in files["resume/w1.json"]
