"""The real-CLI tier's install says what it does while it runs (about 1.4 GB, minutes): what
it installs and how big, then how far it has come, then how long it took. Driven here by a
stand-in npm that writes its packages slowly, so no registry is asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realcli import install
from tests.realcli.install import InstallError, npm_install

# writes three 1 MB files into <prefix>/node_modules, a little apart, as a download would
FAKE_NPM = """#!/bin/sh
while [ "$1" != "--prefix" ]; do shift; done
mod="$2/node_modules/pkg"
mkdir -p "$mod"
for i in 1 2 3; do
  head -c 1000000 /dev/zero > "$mod/part$i"
  sleep 0.4
done
echo "added 3 packages"
"""


def _npm(tmp_path: Path, body: str) -> str:
    npm = tmp_path / "npm"
    npm.write_text(body)
    npm.chmod(0o755)
    return str(npm)


@pytest.mark.timeout(30)
def test_an_install_says_how_far_it_has_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install, "PROGRESS_EVERY_S", 0.2)
    heard: list[str] = []
    root, log = tmp_path / "cache", tmp_path / "npm-install.log"
    npm_install(_npm(tmp_path, FAKE_NPM), root, ["pkg@1.0.0"], "t", log, heard.append, 3_000_000)
    progress = [ln for ln in heard if "on disk after" in ln]
    assert progress, heard
    assert all(
        ln.startswith("realcli: npm install: ") and "of about 3 MB (" in ln for ln in progress
    )
    sizes = [int(ln.split("realcli: npm install: ")[1].split(" MB")[0]) for ln in progress]
    assert sizes == sorted(sizes)  # how far: it only grows
    assert heard[-1].startswith("realcli: npm install done: 3 MB in ")
    assert "added 3 packages" in log.read_text() and "pkg@1.0.0" in log.read_text()


@pytest.mark.timeout(30)
def test_a_failed_install_is_an_error_with_npm_s_words(tmp_path: Path) -> None:
    npm = _npm(tmp_path, "#!/bin/sh\necho 'E404 no such package' >&2\nexit 1\n")
    with pytest.raises(InstallError, match=r"npm install exited 1: E404 no such package$"):
        npm_install(npm, tmp_path / "cache", ["nope@1"], "t", tmp_path / "log")


@pytest.mark.timeout(240)
def test_a_test_run_on_every_core_shows_the_install_s_progress_on_its_terminal(
    tmp_path: Path,
) -> None:
    """What `make test` runs (pytest -n, the install in an xdist worker) says on the terminal
    what it installs, how far it has come and when it is done, though pytest captures the
    worker's output. The stand-in npm installs no CLI: the run then errors, as it should."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _npm(bin_dir, FAKE_NPM)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LOOOP_REALCLI_CACHE": str(tmp_path / "cache"),
        "LOOOP_REALCLI_PROGRESS_S": "0.3",
    }
    repo = Path(install.__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-x", "-q"]
    argv += ["tests/realcli/test_presets.py", "-k", "claude"]
    run = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=200)
    said = run.stdout + run.stderr
    assert run.returncode != 0, said[-2000:]
    assert "realcli: installing the agent CLIs (claude " in said, said[-2000:]
    assert "on disk after" in said and "realcli: npm install done: 3 MB in " in said
