"""Git repositories for the host tests: made here as root, on the disk the lab's hosts share,
owned by the host user that works in them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.hosts.conftest import Host


def git(*args: str, cwd: Path | None = None) -> str:
    """git as root here, on files a host user owns (the lab's hosts share this disk)."""
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@lab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def host_repo(h: Host, name: str) -> Path:
    """A repository with one commit in the host user's home, owned by that user."""
    repo = h.home / "src" / name
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", str(repo))
    (repo / "README").write_text("app\n")
    git("-C", str(repo), "add", "README")
    git("-C", str(repo), "commit", "-qm", "first")
    subprocess.run(["chown", "-R", f"{h.user}:{h.user}", str(h.home / "src")], check=True)
    return repo
