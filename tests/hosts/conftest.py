"""Real SSH hosts for looop's SSH backend: the lab of tests/hosts/lab.py, for pytest.

Three hosts h1..h3: network namespaces joined to the root namespace by veth pairs on
10.231.N.0/24 with no other route, each running Debian's sshd for a user of its own
(looopt1..3); the client side is a throwaway key, known_hosts and ssh config handed to looop
with `--ssh-config`. Everything is torn down even when a test fails. Without root, apt,
`ip netns` or sshd the whole directory is skipped, loudly, with the reason.

Two labs on one machine must not share users or a subnet (a lab wipes its users' looop
files and kills their processes). Each lab holds a slot of its own (tests/hosts/lab.py,
`claim_slot`: a lock in /run/looop-lab held while it lives): slot 0 is the users looopt1..3
on 10.231.1-3, slot k the users looopt<letter k>1..3 ('b', 'c', ...) on 10.231.4k+1-3, its
namespaces tagged with the same letter. Two test runs side by side (two worktrees), and the
two chains of one run, thus never meet, with nothing to set; each lab deletes its users at
its end. To move a run off the defaults anyway:

    LOOOP_TEST_LAB_NET=10.233 LOOOP_TEST_LAB_USERS=looopc .venv/bin/pytest tests/hosts/...

LOOOP_TEST_LAB_NET: the first two octets (default 10.231); LOOOP_TEST_LAB_USERS: the user
name prefix (default looopt). bench/bench_hosts.py uses 10.232 and looopb.
A test that names a host's user reads it from its lab (`Host.user`), so any prefix passes.

The tests run as two chains (xdist groups, see tests/conftest.py), each on a worker with a lab
of its own, so that the two run side by side. When one worker runs both chains they share
the lab of the first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hosts.lab import NET, PREFIX, Host, Lab, Slot, claim_slot, release_slot, why_not
from tests.hosts.lab import lab as build_lab

ROOT = Path(__file__).resolve().parents[2]
LOOOP = ROOT / ".venv" / "bin" / "looop"
LAB_NET = os.environ.get("LOOOP_TEST_LAB_NET", NET)
LAB_USERS = os.environ.get("LOOOP_TEST_LAB_USERS", PREFIX)

__all__ = ["LAB_NET", "LAB_USERS", "LOOOP", "Home", "Host", "Lab", "Place", "place"]


@dataclass(frozen=True)
class Place:
    """Where this worker's lab lives on LAB_NET: the suffix of its users (PREFIX<suffix>1..)
    and of its namespace tags, and its hosts' third-octet base (from its slot)."""

    suffix: str
    base: int

    @property
    def users(self) -> str:
        return f"{LAB_USERS}{self.suffix}"

    def tag(self, kind: str = "looop") -> str:
        return f"{kind}{self.suffix}"


def place(slot: Slot) -> Place:
    return Place(slot.suffix, slot.base)


@pytest.fixture(scope="package")
def where() -> Iterator[Place]:
    """This worker's lab place: a slot no other lab on this machine holds (another run's, or
    the other chain's), held until the package's labs are torn down."""
    slot = claim_slot()
    try:
        yield place(slot)
    finally:
        release_slot(slot)


@pytest.fixture(scope="package")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = why_not(install=True)
    if why is None and not LOOOP.exists():
        why = f"SSH host tests run the installed looop: {LOOOP} is missing (`make lint`)"
    if why is not None:
        sys.stderr.write(f"\nSKIPPING tests/hosts: {why}\n")
        pytest.skip(why)
    where: Place = request.getfixturevalue("where")  # a slot is claimed where a lab can be
    d = tmp_path_factory.mktemp("lab")
    # pip_compile=False: the tests' hosts skip pip's byte-compiling (~8 installs a run);
    # bench/bench_hosts.py keeps it, as its install figure is what users get
    with build_lab(
        d,
        3,
        LAB_NET,
        where.users,
        where.tag(),
        base=where.base,
        pip_compile=False,
        drop_users=True,
    ) as built:
        yield built


@dataclass
class Home:
    data: Path
    lab: Lab


@contextmanager
def _run_wide_lock(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A folder this run's xdist workers share (never another run's), held by one at a time."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with (shared / f"{name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield shared / name


def run_srt() -> dict[str, str]:
    """The run's own srt (tests/sandbox/install.py's cache) for `host install` to copy to the
    hosts: a machine with no global srt still gets sandboxed workers on its lab hosts, as a
    user's `host install` copies theirs. Where it cannot be had, said once; the hosts' sandboxed
    tests then fail naming the missing srt."""
    from tests.realcli.install import InstallError
    from tests.sandbox.install import install as install_srt

    try:
        return {"LOOOP_SRT": str(install_srt())}
    except InstallError as e:
        print(f"\nhosts lab: no srt to copy to the hosts ({e}); sandboxed host tests will fail")
        return {}


@pytest.fixture(scope="package")
def home(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A home data dir with the lab's three hosts registered and looop installed on each.
    The run's first install builds and fetches the wheels; the other installs reuse them:
    the other two hosts of its lab at once, and the other chain's lab from a copy (the same
    source tree, so the same wheels), all three hosts together."""
    from tests.hosts.util import looop

    data = tmp_path_factory.mktemp("home") / "data"
    try:
        yield _installed(data, lab, tmp_path_factory)
    finally:  # a failed add or install too: its relays and masters are not left running
        looop(data, "down", timeout=60)
        for h in lab.hosts:
            looop(data, "host", "rm", h.name, "--force", timeout=30)


def _installed(data: Path, lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Home:
    from concurrent.futures import ThreadPoolExecutor

    from tests.hosts.util import looop

    for h in lab.hosts:
        add = looop(data, "host", "add", h.name, h.url, "--ssh-config", str(lab.ssh_config))
        assert add.returncode == 0, add.stderr

    srt = run_srt()

    def install(names: list[str]) -> None:
        def one(n: str) -> subprocess.CompletedProcess[str]:
            return looop(data, "host", "install", n, timeout=300, env=srt)

        with ThreadPoolExecutor(len(names)) as pool:
            done = list(pool.map(one, names))
        assert all(r.returncode == 0 for r in done), [r.stderr for r in done]

    wheels = data / "hosts" / ".wheels"
    with _run_wide_lock(tmp_path_factory, "wheels") as built:
        copied = built.is_dir()
        if copied:
            shutil.copytree(built, wheels)
        else:
            install(["h1"])
            shutil.copytree(wheels, built)
    install([h.name for h in lab.hosts if copied or h.name != "h1"])
    return Home(data, lab)


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
