"""The entry point hands every verb its environment and clock (`main(argv, env, clock)`, as
httpie's `main(args, env)`): a test passes both instead of touching the process's own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.clocks import FixedClock
from tests.helpers import Cli, environ_unchanged, run_cli

T0 = 1_800_000_000.0  # 2027-01-15, far from the real clock


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LOOOP_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


def test_verbs_see_the_env_and_clock_they_are_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "LOOOP_DATA_DIR" not in os.environ or os.environ["LOOOP_DATA_DIR"] != str(
        tmp_path / "data"
    )
    env, clock = _env(tmp_path), FixedClock(T0)
    code, out, err = run_cli(capsys, "goal", "write", "g", "goal: x", env=env, clock=clock)
    assert code == 0, err
    assert (tmp_path / "data" / "goals" / "g.md").exists()
    assert "2027-01-15" in (tmp_path / "data" / "journal.md").read_text()
    code, out, err = run_cli(capsys, "status", "--json", env=env, clock=clock)  # the fast path
    assert code == 0, err
    assert json.loads(out)["data_dir"] == str(tmp_path / "data")
    code, out, err = run_cli(capsys, "claim", "job", "--session", "w1", env=env, clock=clock)
    assert code == 0, err
    rec = json.loads((tmp_path / "data" / "claims" / "job.json").read_text())
    assert int(rec["ts"]) == int(T0)


def test_the_env_given_decides_the_session_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(tmp_path, LOOOP_SESSION_ID="../escape")
    code, _, err = run_cli(capsys, "told", env=env, clock=FixedClock(T0))
    assert code == 1 and "LOOOP_SESSION_ID" in err


def test_the_cli_fixture_never_touches_the_process_environment(cli: Cli, data: Path) -> None:
    assert os.environ.get("LOOOP_DATA_DIR") != str(data)
    code, out, err = cli("help")
    assert code == 0 and f"data dir  {data}" in out, err
    code, _, err = cli("told", env_extra={"LOOOP_SESSION_ID": "../escape"})
    assert code == 1 and "LOOOP_SESSION_ID" in err  # env_extra reached the verb...
    assert os.environ.get("LOOOP_SESSION_ID") != "../escape"  # ...and only the verb
    assert "LOOOP_SESSION_ID" not in cli.env


def test_a_changed_environment_is_caught_by_name() -> None:
    before = dict(os.environ)
    assert environ_unchanged(before, "nothing") is None
    before["LOOOP_GHOST"] = "1"  # as if a test had unset it: the snapshot differs from now
    with pytest.raises(AssertionError, match=r"changed os.environ: \['LOOOP_GHOST'\]"):
        environ_unchanged(before, "a test")
