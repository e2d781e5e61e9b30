"""Only its owner writes a home: `init`, `doctor`, the pulse and a one-off beat refuse a data
dir (or config, or a folder above either) that another user can write, in one line naming the
`chmod`/`chown` that fixes it — another user's `.decision.json` would otherwise run as you."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.loop.homeguard import problem
from tests.helpers import Cli, clean_env

pytestmark = pytest.mark.timeout(60)

INIT = ("init", "--runner", "custom", "--tick-command", "true", "--worker-command",
        "true {{prompt_file}}", "--no-sandbox", "--force")  # fmt: skip


def _init(cli: Cli) -> None:
    code, _, err = cli(*INIT)
    assert code == 0, err


def _fix_said(text: str, what: str, path: Path, fix: str) -> None:
    """One line names the thing, who can write it and the command that fixes it."""
    [line] = [ln for ln in text.splitlines() if fix in ln]
    assert what in line and str(path) in line, text


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_init_refuses_a_data_dir_others_can_write(cli: Cli, data: Path, mode: int) -> None:
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(mode)
    code, _, err = cli(*INIT)
    assert code != 0
    _fix_said(err, "writable by other users", data, f"chmod go-w {data}")
    assert not (data / "config.json").exists()  # nothing written
    data.chmod(0o700)
    _init(cli)


def test_doctor_fails_a_world_writable_data_dir_and_config(cli: Cli, data: Path) -> None:
    _init(cli)
    code, out, _ = cli("doctor")
    assert "✓ owner: only you can write" in out
    (data / "config.json").chmod(0o666)
    code, out, _ = cli("doctor")
    assert code == 1
    _fix_said(out, "✗ owner: config", data / "config.json", "chmod go-w")
    (data / "config.json").chmod(0o600)
    data.chmod(0o757)
    code, out, _ = cli("doctor", "--json")
    assert code == 1
    row = next(r for r in json.loads(out) if r["name"] == "owner")
    assert "mode 0757" in row["detail"] and row["fix"] == f"run `chmod go-w {data}`"


def test_a_folder_above_that_others_can_write_is_refused_unless_sticky(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    data = shared / "home"
    data.mkdir(parents=True)
    data.chmod(0o700)
    shared.chmod(0o777)
    said = problem(Paths.at(data))
    assert said is not None and f"sits in {shared}" in said[0] and "chmod go-w" in said[1]
    shared.chmod(0o1777)  # like /tmp: nobody renames what is not theirs
    assert problem(Paths.at(data)) is None


def test_a_config_elsewhere_is_checked_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    cfg = tmp_path / "elsewhere" / "looop.json"
    cfg.parent.mkdir()
    cfg.write_text("{}")
    cfg.chmod(0o622)
    said = problem(Paths(data=data, config=cfg))
    assert said is not None and said[0].startswith(f"config {cfg} is writable by other users")


def test_a_home_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, 4242, 4242)
    said = problem(Paths.at(data))
    assert said is not None and "belongs to another user (uid 4242)" in said[0]
    assert said[1].startswith(f"run `chown {os.geteuid()} {data}`")


@pytest.mark.parametrize("verb", ["pulse", "tick"])
def test_the_pulse_and_a_beat_refuse_before_any_decide(
    cli: Cli, data: Path, tmp_path: Path, verb: str
) -> None:
    _init(cli)
    marker = tmp_path / "decided"
    cfg = json.loads((data / "config.json").read_text())
    cfg["runners"]["custom"]["tick"] = f"touch {marker}"
    (data / "config.json").write_text(json.dumps(cfg))
    data.chmod(0o777)
    done = subprocess.run(
        [sys.executable, "-m", "looop", verb],
        env=clean_env(tmp_path, data),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    _fix_said(done.stderr, "writable by other users (mode 0777)", data, f"chmod go-w {data}")
    assert not marker.exists()
