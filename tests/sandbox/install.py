"""Install the real sandbox parts, once: Anthropic's sandbox runtime (`srt`, from npm) into a
cache inside the repo, and Debian's bubblewrap, socat and ripgrep through apt-get when missing.

    python -m tests.sandbox.install      # what the session fixture does, by hand

npm missing is the only reason the sandbox suite is skipped; anything else that fails here
(apt-get refused, no root, npm install broken, srt not running) is an error the run reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.realcli.install import InstallError, install_debian, locked, npm_install

# Exact version, checked with `npm view @anthropic-ai/sandbox-runtime version`.
SRT_PACKAGE = "@anthropic-ai/sandbox-runtime"
SRT_VERSION = "0.0.83"
# program -> the Debian package that holds it
DEBIAN: dict[str, str] = {"bwrap": "bubblewrap", "socat": "socat", "rg": "ripgrep"}

REPO = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO / ".sandbox-cache"
_MARKER = ".installed.json"


def npm_path() -> str | None:
    return shutil.which("npm")


def cache_dir() -> Path:
    return CACHE_ROOT / f"srt-{SRT_VERSION}"


def srt_path(root: Path) -> Path:
    return root / "node_modules" / ".bin" / "srt"


def check_srt(root: Path) -> str:
    exe = srt_path(root)
    if not exe.exists():
        raise InstallError(f"{exe} is missing after npm install")
    try:
        done = subprocess.run(
            [str(exe), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallError(f"srt --version did not run: {e}") from e
    out = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
    if done.returncode != 0 or SRT_VERSION not in out:
        raise InstallError(f"srt --version exited {done.returncode}, printed {out[-400:]!r}")
    return out


def install() -> Path:
    """srt's path, with the pinned runtime and the Debian programs installed (at most once)."""
    npm = npm_path()
    if npm is None:
        raise InstallError("npm is not on PATH")
    install_debian(DEBIAN)
    root = cache_dir()
    with locked(CACHE_ROOT / f"{root.name}.lock"):
        marker = root / _MARKER
        if marker.exists() and srt_path(root).exists():
            return srt_path(root)
        spec = f"{SRT_PACKAGE}@{SRT_VERSION}"
        npm_install(npm, root, [spec], "looop-sandbox-cache", root / "npm-install.log")
        version = check_srt(root)
        marker.write_text(json.dumps({"version": version}) + "\n")
        return srt_path(root)


def main() -> int:
    try:
        srt = install()
    except InstallError as e:
        print(f"sandbox install failed: {e}", file=sys.stderr)
        return 1
    print(srt)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
