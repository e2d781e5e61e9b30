"""Install the real browser parts, once: Debian's chromium and chromium-driver through apt-get
when missing (Playwright's own browser downloads are not reachable here; selenium drives the
system chromium through chromedriver).

    python -m tests.web.install      # what the browser tests' fixture does, by hand
"""

from __future__ import annotations

import shutil
import sys

from tests.realcli.install import InstallError, install_debian

# program -> the Debian package that holds it
DEBIAN: dict[str, str] = {"chromium": "chromium", "chromedriver": "chromium-driver"}


class CannotInstall(Exception):
    """Why the browser cannot be had here: one line, said loudly by the skip."""


def install() -> tuple[str, str]:
    """(chromium, chromedriver) paths, apt-getting them first when absent."""
    try:
        install_debian(DEBIAN, timeout=900)
    except InstallError as e:
        raise CannotInstall(str(e)) from None
    return str(shutil.which("chromium")), str(shutil.which("chromedriver"))


if __name__ == "__main__":
    try:
        print(*install())
    except CannotInstall as e:
        print(f"browser install failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
