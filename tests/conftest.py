"""Shared fixtures: a temp data dir, a fixed clock, a Ctx that records events; and the tiers.

Every test belongs to exactly one tier (a marker, `--strict-markers`): its folder gives the
default, a `pytestmark` or a mark on the test overrides it. The `unit` tier is `make check`'s:
a unit test that starts a process or sleeps fails with a line saying to mark it `process`.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.core.clock import FixedClock
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.core.paths import Paths


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths.at(tmp_path / "data")
    p.data.mkdir(parents=True)
    return p


@pytest.fixture
def ctx(paths: Paths, clock: FixedClock) -> Ctx:
    em = Emitter(clock=clock, events_path=paths.events, stream=io.StringIO(), keep_seen=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(paths.data.parent)}
    return Ctx(paths=paths, clock=clock, env=env, events=em, bin="looop")


@pytest.fixture(scope="session", autouse=True)
def _session_host_stopped() -> Iterator[None]:
    """Supervisors fork from a shared session host; the suite leaves none running."""
    yield
    from looop.sessions.host import stop_host

    stop_host()


@pytest.fixture(scope="session", autouse=True)
def _beat_hosts_stopped() -> Iterator[None]:
    """`looop tick` run as a command starts a beat host; the suite leaves none running."""
    yield
    import os

    from looop.cli.beathost import stop_beat_host

    for env in (dict(os.environ), {"LANG": "C.UTF-8"}):
        stop_beat_host(env)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        if any(item.get_closest_marker(t) for t in TIERS):
            continue
        try:
            folder = Path(str(item.path)).relative_to(root).parts[0]
        except ValueError:
            folder = ""
        item.add_marker(_FOLDER_TIER.get(folder, "process"))


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
