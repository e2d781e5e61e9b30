"""A worker on an SSH host, driven from home with the very verbs a local one takes."""

from __future__ import annotations

import json

import pytest

from tests.hosts.conftest import Home
from tests.hosts.util import looop

# a real interactive program: it echoes what it reads, counts lines, exits on "quit"
PROG = (
    "bash -c 'echo ready-$(id -un); n=0; while read -r l; do n=$((n+1)); "
    'echo "got[$n]: $l"; [ "$l" = quit ] && exit 7; done\' # {{prompt_file}}'
)


def _user(home: Home, name: str) -> str:
    """The lab user a host's worker runs as (each lab has users of its own)."""
    return next(h.user for h in home.lab.hosts if h.name == name)


@pytest.mark.timeout(120)
def test_a_remote_worker_is_driven_like_a_local_one(home: Home) -> None:
    d = home.data
    ready = f"ready-{_user(home, 'h2')}"
    start = looop(d, "worker", "start", "rw1", "echo things", "--host", "h2", "--command", PROG)
    assert start.returncode == 0, start.stderr
    assert looop(d, "expect", "rw1", ready, "--timeout", "20s").returncode == 0
    # the worker's files are the host user's, not the home's
    assert not (d / "sessions" / "rw1").exists()
    rec = json.loads((d / "hosts" / "workers" / "rw1.json").read_text())
    assert rec["host"] == "h2"
    assert looop(d, "send", "rw1", "hello there").returncode == 0
    got = looop(d, "expect", "rw1", r"got\[1\]: hello there", "--timeout", "20s")
    assert got.returncode == 0, got.stderr
    shot = looop(d, "shot", "rw1")
    assert "got[1]: hello there" in shot.stdout and ready in shot.stdout
    rows = json.loads(looop(d, "ls", "--json").stdout)
    mine = [r for r in rows if r["id"] == "rw1"]
    assert mine and mine[0]["host"] == "h2" and mine[0]["alive"], rows
    looop(d, "send", "rw1", "quit")
    waited = looop(d, "wait", "rw1", "--timeout", "20s")
    assert waited.returncode == 7, waited.stderr
    log = looop(d, "log", "rw1")
    assert "got[2]: quit" in log.stdout


@pytest.mark.timeout(120)
def test_key_and_kill_on_a_remote_worker(home: Home) -> None:
    d = home.data
    start = looop(
        d, "worker", "start", "rw2", "x", "--host", "h3", "--command", "cat # {{prompt_file}}"
    )
    assert start.returncode == 0, start.stderr
    looop(d, "send", "rw2", "-n", "partial")
    assert looop(d, "key", "rw2", "Enter").returncode == 0
    assert looop(d, "expect", "rw2", "partial", "--timeout", "20s").returncode == 0
    killed = looop(d, "kill", "rw2")
    assert killed.returncode == 0, killed.stderr
    rows = json.loads(looop(d, "ls", "-a", "--json").stdout)
    mine = [r for r in rows if r["id"] == "rw2"]
    assert mine and not mine[0]["alive"], rows
    again = looop(d, "send", "rw2", "late")
    assert again.returncode != 0 and "Traceback" not in again.stderr
