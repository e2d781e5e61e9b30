"""same_world: a peer with other namespaces, powers or limits is not one of us."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from looop.core.sameworld import Here, same_world

pytestmark = [pytest.mark.timeout(30), pytest.mark.process]  # real processes


@contextmanager
def running(argv: list[str]) -> Iterator[int]:
    """A child that stays (its pid), however it was wrapped; killed afterwards."""
    proc = subprocess.Popen([*argv, "sleep", "30"])
    try:
        # the wrapper execs sleep: wait until the pid runs sleep, not the wrapper
        for _ in range(200):
            try:
                with open(f"/proc/{proc.pid}/comm") as f:
                    if f.read().strip() == "sleep":
                        break
            except OSError:
                break
            subprocess.run(["sleep", "0.01"], check=False)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_this_process_and_a_plain_child_are_the_same_world() -> None:
    assert same_world(os.getpid())
    here = Here()  # a host's own side, read once before it serves
    with running([]) as pid:
        assert same_world(pid)
        assert same_world(pid, here)


def test_no_pid_or_a_gone_one_is_never_the_same_world() -> None:
    assert not same_world(0)
    assert not same_world(-1)
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not same_world(proc.pid)


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["unshare", "-m"], "a mount namespace of its own"),
        (["unshare", "-n"], "a network namespace of its own"),
        (["setpriv", "--no-new-privs"], "no_new_privs"),
        (["setpriv", "--inh-caps=-all", "--bounding-set=-net_raw"], "fewer capabilities"),
        (["setpriv", "--groups=12345", "--"], "other groups"),
    ],
)
def test_a_peer_with_other_namespaces_or_powers_is_not(argv: list[str], what: str) -> None:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    probe = subprocess.run([*argv, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{' '.join(argv)} is not permitted here: {probe.stderr.decode().strip()}")
    here = Here()
    with running(argv) as pid:
        assert not same_world(pid), what
        assert not same_world(pid, here), what
