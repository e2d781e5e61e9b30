"""Install the real browser parts, once: Debian's chromium and chromium-driver through apt-get
when missing (Playwright's own browser downloads are not reachable here; selenium drives the
system chromium through chromedriver).

    python -m tests.web.install      # what the browser tests' fixture does, by hand
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# program -> the Debian package that holds it
DEBIAN: dict[str, str] = {"chromium": "chromium", "chromedriver": "chromium-driver"}


class CannotInstall(Exception):
    """Why the browser cannot be had here: one line, said loudly by the skip."""


def missing() -> list[str]:
    return [prog for prog in DEBIAN if shutil.which(prog) is None]


def install() -> tuple[str, str]:
    """(chromium, chromedriver) paths, apt-getting them first when absent."""
    lack = missing()
    if lack:
        pkgs = [DEBIAN[p] for p in lack]
        apt = shutil.which("apt-get")
        if apt is None:
            raise CannotInstall(
                f"{', '.join(lack)} missing and no apt-get: install {' '.join(pkgs)}"
            )
        if os.geteuid() != 0:
            want = " ".join(pkgs)
            raise CannotInstall(f"{', '.join(lack)} missing and not root: install {want}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = [apt, "install", "-y", "--no-install-recommends", *pkgs]
        done = _run(cmd, env)
        if done.returncode != 0:  # stale or absent package lists: refresh once, then retry
            _run([apt, "update"], env)
            done = _run(cmd, env)
        if done.returncode != 0 or missing():
            text = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
            raise CannotInstall(
                f"apt-get install {' '.join(pkgs)} exited {done.returncode}: {text[-300:]}"
            )
    return str(shutil.which("chromium")), str(shutil.which("chromedriver"))


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise CannotInstall(f"{' '.join(cmd)} took over 900 s") from e


if __name__ == "__main__":
    try:
        print(*install())
    except CannotInstall as e:
        print(f"browser install failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
