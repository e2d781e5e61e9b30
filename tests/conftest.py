"""Shared fixtures: a temp data dir, a fixed clock, a Ctx that records events; and the tiers.

Every test belongs to exactly one tier (a marker, `--strict-markers`): its folder gives the
default, a `pytestmark` or a mark on the test overrides it. The `unit` tier is `make check`'s:
a unit test that starts a process or sleeps fails with a line saying to mark it `process`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.paths import Paths
from tests.clocks import FixedClock
from tests.procwatch import Zombies, zombie_children


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths.at(tmp_path / "data")
    p.data.mkdir(parents=True)
    return p


@pytest.fixture
def zombies() -> Zombies:
    """Zombie children of this process that appeared during the test: one an earlier test of
    the same xdist worker left (an orphan adopted while it was a subreaper) is not this one's."""
    before = set(zombie_children())
    return lambda: [p for p in zombie_children() if p not in before]


@pytest.fixture
def ctx(paths: Paths, clock: FixedClock) -> Ctx:
    em = Emitter(clock=clock, events_path=paths.events, stream=io.StringIO(), keep_seen=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(paths.data.parent),
        "LOOOP_RUNTIME_DIR": os.environ["LOOOP_RUNTIME_DIR"],
    }
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin="looop")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Say what the real-part tiers use and whether this checkout has it yet (a first run
    installs it, once, before the first test that needs it) — once, from the controller."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if hasattr(config, "workerinput") or reporter is None:
        return
    for line in _real_parts():
        reporter.write_line(line)


def _real_parts() -> list[str]:
    from tests.realcli.install import cache_dir as cli_cache
    from tests.sandbox.install import cache_dir as srt_cache

    def state(d: Path) -> str:
        return "installed" if (d / ".installed.json").exists() else "installs on first use"

    return [
        f"real parts: srt + bubblewrap, socat, ripgrep (npm ~20 MB, apt) in {srt_cache()}: "
        f"{state(srt_cache())}",
        f"real parts: claude, codex, pi, opencode + its SDK (npm ~1.4 GB, a few minutes, "
        f"how far it has come said as it goes) in {cli_cache()}: {state(cli_cache())}",
    ]


# hypothesis: the full profile by default (make test, CI); `make check` loads the small one.
# A loaded machine is slow, never wrong: no deadline, no too-slow health check
settings.register_profile("full", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("full")
settings.register_profile("check", settings.get_profile("full"), max_examples=20)
# now and then, by hand: `pytest --hypothesis-profile=deep` on the property tests
settings.register_profile("deep", settings.get_profile("full"), max_examples=2000)


# What looop reads from a shell besides LOOOP_*: a user's exported data dir, colour choice or
# CLI homes would reach every looop a test starts with os.environ. The suite's own knobs stay.
_USER_ENV = (
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "NO_COLOR",
    "CLAUDE_CONFIG_DIR",
    "CODEX_HOME",
    "GEMINI_CLI_HOME",
)
_SUITE_KNOBS = ("LOOOP_TEST_", "LOOOP_REALCLI_", "LOOOP_RECORD_NEEDS")


def pytest_configure(config: pytest.Config) -> None:
    """The run's own runtime dir (one per xdist worker): the session hosts the tests
    start never serve, and are never stopped for, anything outside this run. The shell's
    looop settings go first: a test runs the same beside the user's own looop."""
    for name in list(os.environ):
        if name in _USER_ENV or (name.startswith("LOOOP_") and not name.startswith(_SUITE_KNOBS)):
            del os.environ[name]
    os.environ["LOOOP_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="looop-rt-", dir="/tmp")
    # A suite started in the background by a non-interactive shell (`bash -c 'make test &'`,
    # a CI step, nohup) inherits SIGINT ignored, and so would every looop a test starts: a
    # test's Ctrl-C would then never reach it. The processes tests start get what a terminal
    # gives them instead (a Python handler here becomes SIG_DFL in a child at exec).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _hosts_stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Supervisors fork from a session host; the run
    stops its own and removes its runtime dir. The cgroups of its sessions end too: a test
    that SIGKILLed a supervisor, or left its worker running, would leave its group in the
    machine's cgroup tree for good once pytest deletes the folder that names it."""
    yield
    from looop.sessions.state import end_leftovers
    from tests.helpers import stop_hosts

    base = os.environ["LOOOP_RUNTIME_DIR"]
    stop_hosts(base)  # every home's
    tmp = tmp_path_factory.getbasetemp()
    _stop_strays((str(tmp), base))
    shutil.rmtree(base, ignore_errors=True)
    for meta in tmp.glob("**/sessions/*/meta.json"):
        end_leftovers(meta.parent)


def _stop_strays(roots: tuple[str, ...], grace: float = 10.0) -> None:
    """Whatever a failed or interrupted test left running of this run's (a supervisor, a box,
    a pulse, a `looop: web`, a `git daemon`): a process whose environment, cwd or command line
    names the run's temp dir or runtime dir. Ended, and named so the test that did it is found;
    an SSH host's relay, which serves as long as its home registers the host, silently. The
    user's own looop names neither dir, and pytest and its ancestors are spared."""
    spared, pid = set(), os.getpid()
    while pid > 1:
        spared.add(pid)
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    under = [r.encode() for r in roots]

    def ours(word: bytes) -> bool:
        return any(word == r or r + b"/" in word for r in under)

    strays = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in spared:
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{name}/cwd").encode()
        except OSError:
            continue
        if ours(cwd) or any(map(ours, argv)) or any(ours(e.partition(b"=")[2]) for e in env):
            strays.append(int(name))
            if argv[2:4] != [b"host", b"relay"]:
                print(f"\nleft running by a test of this run: {b' '.join(argv)!r}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in strays:
            with contextlib.suppress(OSError):
                os.kill(p, sig)
        deadline = time.monotonic() + grace
        while strays and time.monotonic() < deadline:
            strays = [p for p in strays if _alive(p)]
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running still (a zombie has ended: only its parent's wait is left)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- workers -------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: five workers for two cores. Most of the suite waits on processes, PTYs,
    sockets and real CLIs rather than on a core: with two workers a core the cores still
    idled a fifth of the run (whole quiet runs on two cores: 4 workers 612-627 s, 5 workers
    576 s, 6 workers 572 s with tests timing out under the load). The unit tier alone (`make
    check`) never waits: one worker per core there. PYTEST_XDIST_AUTO_NUM_WORKERS still
    decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0))
    return cores if config.option.markexpr == "unit" else max(2, 5 * cores // 2)


# -- tiers ---------------------------------------------------------------------------------

TIERS = ("unit", "process", "sandbox", "realcli", "hosts", "web", "slow")
# The folder a test lives in names its tier unless the test says otherwise.
_FOLDER_TIER = {
    "unit": "unit",
    "integration": "process",
    "sandbox": "sandbox",
    "realcli": "realcli",
    "hosts": "hosts",
    "web": "web",
}


# The SSH lab's tests (tests/hosts/) are two chains of about the same wall, each set up once
# (a lab, looop installed on its hosts: the chain's first minute and a half) and run on one
# xdist worker: alone they would be the run's critical path. The second chain's files:
_HOSTS_B = frozenset(
    {
        "test_sandboxed_host.py",
        "test_link_cut.py",
        "test_remote_dashboard.py",
        "test_remote_worker.py",
        "test_host_repo.py",
        "test_lab.py",
    }
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups it distributes by
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            folder = Path(str(item.path)).relative_to(root).parts[0]
        except ValueError:
            folder = ""
        if folder == "hosts":  # two chains, each on one xdist worker with a lab of its own
            chain = "hosts-b" if item.path.name in _HOSTS_B else "hosts"
            item.add_marker(pytest.mark.xdist_group(chain))
        if not any(item.get_closest_marker(t) for t in TIERS):
            item.add_marker(_FOLDER_TIER.get(folder, "process"))
        elif folder and folder != "unit" and item.get_closest_marker("unit") is not None:
            raise pytest.UsageError(
                f"{item.nodeid} is marked unit outside tests/unit: `make check` collects only "
                "tests/unit, so it would never run there — move it to tests/unit"
            )
    # the longest first (the soak, then the SSH lab's two chains, then the tiers of real
    # parts, the unit tier last): xdist hands tests out in this order, and a minute-long
    # browser or CLI test started last is a minute's tail on the run, while the unit tier's
    # thousands of short tests fill the workers evenly to the end
    items.sort(key=_start_order)


# After the slow tests and the SSH lab's chains: the tiers by how long their tests take.
_TIER_ORDER = {"realcli": 2, "web": 2, "sandbox": 2, "hosts": 2, "process": 3, "unit": 4}


def _start_order(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is not None:
        return 0
    if item.get_closest_marker("xdist_group") is not None:
        return 1
    tier = next((t for t in _TIER_ORDER if item.get_closest_marker(t) is not None), "process")
    return _TIER_ORDER[tier]


class UnitTierBreach(BaseException):
    """A BaseException, so no `except Exception` in the code under test can swallow it."""


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise UnitTierBreach(
            f"a unit-tier test {what}: mark it `@pytest.mark.process` (or fake the OS seam)"
        )

    return refused


@pytest.fixture(autouse=True)
def _unit_tier_kept(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier starts no process and never sleeps: that is what keeps `make check` fast."""
    if request.node.get_closest_marker("unit") is None:
        return
    started = "started a process"
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse(started))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(started))
    monkeypatch.setattr(time, "sleep", _refuse("slept"))
