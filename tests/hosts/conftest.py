"""Real SSH hosts for looop's SSH backend: the lab of tests/hosts/lab.py, for pytest.

Three hosts h1..h3: network namespaces joined to the root namespace by veth pairs on
10.231.N.0/24 with no other route, each running Debian's sshd for a user of its own
(looopt1..3); the client side is a throwaway key, known_hosts and ssh config handed to looop
with `--ssh-config`. Everything is torn down even when a test fails. Without root, apt,
`ip netns` or sshd the whole directory is skipped, loudly, with the reason.

Two labs on one machine must not share users or a subnet (a lab wipes its users' looop
files and kills their processes). To run these tests beside another run, give yours its own:

    LOOOP_TEST_LAB_NET=10.233 LOOOP_TEST_LAB_USERS=looopc .venv/bin/pytest tests/hosts/...

LOOOP_TEST_LAB_NET: the first two octets (default 10.231); LOOOP_TEST_LAB_USERS: the user
name prefix (default looopt: users looopt1..3). bench/bench_hosts.py uses 10.232 and looopb.
A test that names a host's user takes the prefix from LAB_USERS, so any prefix passes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hosts.lab import NET, PREFIX, Host, Lab, why_not
from tests.hosts.lab import lab as build_lab

ROOT = Path(__file__).resolve().parents[2]
LOOOP = ROOT / ".venv" / "bin" / "looop"
LAB_NET = os.environ.get("LOOOP_TEST_LAB_NET", NET)
LAB_USERS = os.environ.get("LOOOP_TEST_LAB_USERS", PREFIX)

__all__ = ["LAB_NET", "LAB_USERS", "LOOOP", "Home", "Host", "Lab"]


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = why_not(install=True)
    if why is None and not LOOOP.exists():
        why = f"SSH host tests run the installed looop: {LOOOP} is missing (`make lint`)"
    if why is not None:
        sys.stderr.write(f"\nSKIPPING tests/hosts: {why}\n")
        pytest.skip(why)
    with build_lab(tmp_path_factory.mktemp("lab"), 3, LAB_NET, LAB_USERS) as built:
        yield built


@dataclass
class Home:
    data: Path
    lab: Lab


@pytest.fixture(scope="package")
def home(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A home data dir with the lab's three hosts registered and looop installed on each
    (the first install builds and fetches the wheels; the other two reuse them, at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.hosts.util import looop

    data = tmp_path_factory.mktemp("home") / "data"
    for h in lab.hosts:
        add = looop(data, "host", "add", h.name, h.url, "--ssh-config", str(lab.ssh_config))
        assert add.returncode == 0, add.stderr
    first = looop(data, "host", "install", "h1", timeout=300)
    assert first.returncode == 0, first.stderr
    with ThreadPoolExecutor(2) as pool:
        rest = list(
            pool.map(lambda n: looop(data, "host", "install", n, timeout=300), ["h2", "h3"])
        )
    assert all(r.returncode == 0 for r in rest), [r.stderr for r in rest]
    yield Home(data, lab)
    looop(data, "down", timeout=60)
    for h in lab.hosts:
        looop(data, "host", "rm", h.name, "--force", timeout=30)


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that fails half-way leaves its workers running on the shared hosts, and every
    later test then finds its host full: whatever a test left alive is stopped after it."""
    yield
    if "home" not in request.fixturenames:
        return
    import json

    from tests.hosts.util import looop

    data = request.getfixturevalue("home").data
    listed = looop(data, "ls", "--json", timeout=60)
    rows = json.loads(listed.stdout) if listed.returncode == 0 else []
    if any(r.get("alive") and r.get("id") != "pulse" for r in rows) or listed.returncode != 0:
        looop(data, "down", timeout=120)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's timeout covers the test, not the lab and the installs on three hosts that the
    first test of the run waits for (its own steps are bounded: 300 s an install)."""
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.path)).parents:
            continue
        mark = item.get_closest_marker("timeout")
        if mark is not None and mark.args:
            item.add_marker(pytest.mark.timeout(mark.args[0], func_only=True), append=False)
