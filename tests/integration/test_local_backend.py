"""The local engine behind the worker-backend interface: a real PTY session, started as
`worker start` starts one (sessions/spawner), then driven only through `LocalBackend`, the
face the SSH and Kubernetes engines share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.sessions.spawner import spawn
from looop.sessions.state import list_sessions
from looop.workers.backend import Backend, LocalBackend
from tests.clocks import FixedClock

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    root = tmp_path / "data"
    root.mkdir()
    b = LocalBackend(root, FixedClock())
    yield b
    for s in list_sessions(root):
        if s.alive:
            with contextlib.suppress(Exception):
                b.kill(s.id)


def _start(b: LocalBackend, tmp_path: Path, sid: str, argv: list[str]) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    spawn(b.root, sid, argv, cwd=tmp_path, env=env, size=(60, 10), host_idle_s=0)


def test_a_session_started_sent_to_and_ended_through_the_interface(
    backend: LocalBackend, tmp_path: Path
) -> None:
    engine: Backend = backend  # the local engine satisfies the interface
    script = 'read line; echo "got:$line"; exit 7'
    _start(backend, tmp_path, "w1", ["bash", "-c", script])
    assert engine.reach("w1") == "alive"
    engine.send("w1", "hello")
    assert engine.wait("w1", 20) == 7
    assert engine.reach("w1") == "over"
    assert engine.exit_status("w1") == 7
    text, end = engine.log("w1")
    assert "got:hello" in text
    assert end > 0
    assert "got:hello" in str(engine.screen("w1")["text"])


def test_a_killed_session_is_over_and_an_unknown_one_is_not_alive(
    backend: LocalBackend, tmp_path: Path
) -> None:
    _start(backend, tmp_path, "w2", ["sleep", "60"])
    assert backend.exit_status("w2") is None
    backend.kill("w2")
    assert backend.reach("w2") == "over"
    assert backend.exit_status("w2") is not None
    assert backend.reach("nobody") == "over"
