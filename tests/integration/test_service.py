"""The rendered systemd unit passes Debian's `systemd-analyze verify` (systemd itself is not
running here: verify loads the unit offline, checks every setting and the ExecStart binary)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze"),
]


def _verify(unit: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        env=env,
        cwd=unit.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_service_install_writes_a_unit_systemd_analyze_accepts(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "da ta%x"  # a space and a specifier
    home.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = clean_env(home, data)
    r = subprocess.run(
        [sys.executable, "-m", "looop", "service", "install", "--no-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    units = list((home / ".config/systemd/user").glob("looop-*.service"))
    assert len(units) == 1 and str(units[0]) in r.stdout
    assert "systemctl --user enable --now " + units[0].name in r.stdout
    data.mkdir()  # WorkingDirectory exists once the pulse has run
    v = _verify(units[0], runtime)
    assert v.returncode == 0 and v.stderr.strip() == "", v.stderr
    # the check can fail: a setting systemd does not know is reported
    broken = units[0].with_name("looop-broken.service")
    broken.write_text(units[0].read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "restart specifier" in _verify(broken, runtime).stderr
    r = subprocess.run(
        [sys.executable, "-m", "looop", "service", "uninstall", "--no-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and not units[0].exists(), r.stderr
