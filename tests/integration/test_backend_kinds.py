"""This machine's engine says why a worker could not be reached by its kind (no such worker,
one that ended), over real sessions; and an SSH host's satellite resizes and detaches a
worker of its own, the operations the home's `SshBackend` asks of it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from looop.core.context import Ctx
from looop.remote.ssh.link import PROTOCOL
from looop.remote.ssh.satellite import handle
from looop.sessions.client import kill, request, wait
from looop.sessions.spawner import spawn
from looop.sessions.state import SessionError
from looop.workers.backend import LocalBackend, live
from looop.workers.errors import NoSuchWorker, WorkerOver
from tests.clocks import FixedClock
from tests.helpers import kill_sessions

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def here(ctx: Ctx) -> Iterator[LocalBackend]:
    root = ctx.paths.data
    spawn(root, "w1", ["cat"], cwd=root, env=dict(os.environ))
    yield LocalBackend(root, FixedClock())
    kill_sessions(root)


def test_no_worker_by_that_id_is_said_as_such_by_every_operation(here: LocalBackend) -> None:
    for op in (
        lambda: here.look("w9"),
        lambda: here.send("w9", "hi", False),
        lambda: here.screen("w9"),
        lambda: here.tail("w9", 5, False, None),
        lambda: here.resize("w9", 100, 30),
        lambda: here.detach("w9"),
        lambda: here.kill("w9"),
        lambda: here.wait("w9", 1.0),
        lambda: here.exit_status("w9"),
    ):
        with pytest.raises(NoSuchWorker):
            op()
    assert here.reach("w9") == "over"  # the beat's question stays three-valued


def test_an_ended_worker_is_said_as_ended(here: LocalBackend) -> None:
    live(here, "w1")  # it runs: nothing said
    assert here.resize("w1", 100, 30) == {"cols": 100, "rows": 30}
    kill(here.root, "w1")
    wait(here.root, "w1", 20, FixedClock())
    assert here.look("w1") == "over"
    with pytest.raises(WorkerOver):
        live(here, "w1")
    for op in (
        lambda: here.send("w1", "late", False),
        lambda: here.resize("w1", 90, 20),
        lambda: here.detach("w1"),
    ):
        with pytest.raises(WorkerOver, match="already finished"):
            op()
    assert "text" in here.screen("w1")  # an ended worker's screen is still shown


def test_a_hosts_satellite_resizes_and_detaches_its_worker(ctx: Ctx, here: LocalBackend) -> None:
    ask = {"v": PROTOCOL, "id": "w1"}
    assert handle(ctx, "resize", {**ask, "cols": 100, "rows": 30}, "test") == {
        "cols": 100,
        "rows": 30,
    }
    live = request(here.root, "w1", "status")
    assert (live["cols"], live["rows"]) == (100, 30)
    assert handle(ctx, "detach", ask, "test") == {"detached": True, "clients": 0}
    bad = handle(ctx, "resize", {**ask, "cols": "wide", "rows": 30}, "test")
    assert bad == {"error": "resize needs whole numbers `cols` and `rows`"}


def test_a_bad_id_is_refused_as_the_session_said_it(here: LocalBackend) -> None:
    with pytest.raises(SessionError) as got:
        here.send("../w1", "hi", False)
    assert not isinstance(got.value, (NoSuchWorker, WorkerOver))
    assert "\n" not in str(got.value)
