"""The SSH lab's hosts skip pip's byte-compiling (tests/hosts/lab.py `pip_config`): the file
it writes is one pip reads as `--compile` off. pip reads a negated flag in a config file
backwards (`no-compile = true` compiles), so the claim is checked with pip itself."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.hosts.lab import pip_config


def _wheel(folder: Path) -> Path:
    """The smallest wheel pip installs: one module, its metadata and its RECORD."""
    name = "looop_labprobe"
    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": b"ANSWER = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: looop-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    rows = []
    for arc, body in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        rows.append(f"{arc},sha256={digest},{len(body)}")
    rows.append(f"{dist}/RECORD,,")
    whl = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for arc, body in files.items():
            z.writestr(arc, body)
        z.writestr(f"{dist}/RECORD", "\n".join(rows) + "\n")
    return whl


def _compiled(tmp: Path, compile_: bool) -> list[Path]:
    """The .pyc files pip writes installing the probe for a user whose config `pip_config`
    wrote (HOME is the user's, nothing else configures pip)."""
    home = tmp / f"home-{compile_}"
    home.mkdir()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout
    pip_config(home, user.strip(), compile_)
    target = tmp / f"site-{compile_}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_CONFIG"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["HOME"] = str(home)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--no-index", "--no-deps", "--target", str(target), str(_wheel(tmp))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "looop_labprobe.py").is_file()
    return sorted(target.rglob("*.pyc"))


@pytest.mark.timeout(240)
def test_the_lab_pip_config_turns_byte_compiling_off_and_its_absence_leaves_it_on(
    tmp_path: Path,
) -> None:
    assert _compiled(tmp_path, compile_=False) == []
    assert _compiled(tmp_path, compile_=True)  # pip's default: the probe is compiled
