"""Shared fixtures: a temp data dir, a fixed clock, a Ctx that records events."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

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
