"""A real user who is not root, made for a test (root makes it; anyone else skips), and looop
run as them: `setpriv` to their uid, a Python they can start, a home of their own in /tmp."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import looop
from tests.procwatch import kill_all

USER = "looopkeep"
SRC = str(Path(looop.__file__).resolve().parents[1])


class As:
    """looop run as a user who is not root, on a data dir of their own."""

    def __init__(self, uid: int, gid: int, python: str, home: Path) -> None:
        self.uid, self.gid, self.python, self.home = uid, gid, python, home
        self.data = home / "data"
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "IS_SANDBOX": "1",
            "LOOOP_DATA_DIR": str(self.data),
            "LOOOP_RUNTIME_DIR": str(home / "rt"),
            "PYTHONPATH": os.pathsep.join([SRC, sysconfig.get_paths()["purelib"]]),
        }

    def argv(self, *cmd: str) -> list[str]:
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        return ["setpriv", *ids, "--", *cmd]

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(self.python, "-m", "looop", *args),
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=60,
        )


def _user() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "-M", "-s", "/usr/sbin/nologin", USER], capture_output=True, timeout=30
        )
        if made.returncode not in (0, 9):  # 9: made meanwhile by a neighbour test
            pytest.skip(f"useradd failed: {made.stderr.decode().strip()}")
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


@contextmanager
def nonroot() -> Iterator[As]:
    """looop as a user who is not root, on a fresh home; skips where none can be made."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("making a user who is not root needs root, useradd and setpriv")
    uid, gid = _user()
    home = Path(tempfile.mkdtemp(prefix="looop-nr-", dir="/tmp"))
    os.chown(home, uid, gid)
    who = None
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        who = As(uid, gid, python, home)
        probe = subprocess.run(  # from a shell: what the user's own processes can start
            who.argv("/bin/sh", "-c", f"exec {python} -c 'import looop.cli.root, pyte'"),
            env=who.env,
            cwd=home,
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            break
    else:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip("no Python the user can run imports looop and its dependencies")
    config = {"default": "x", "runners": {"x": {"tick": "true", "worker": "cat {{prompt_file}}"}}}
    made = who.looop("init", "--no-sandbox")
    assert made.returncode == 0, made.stdout + made.stderr
    (who.data / "config.json").write_text(json.dumps({**config, "max_daily_usd": 0}))
    yield who
    who.looop("down")
    kill_all(_pids_of(uid, home))
    shutil.rmtree(home, ignore_errors=True)


def _pids_of(uid: int, home: Path) -> list[int]:
    """The test user's processes of this test's home: tests running beside it on other
    workers are the same user, and their processes are theirs to end (found by the HOME every
    process the test started, and all below them, inherits, or the folder they work in)."""
    mark = b"\0HOME=" + str(home).encode() + b"\0"
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = b"\0" + f.read()
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if mark in env or cwd == str(home) or cwd.startswith(f"{home}/"):
                out.append(int(entry))  # an `env -i` child still works where it was started
    return out
