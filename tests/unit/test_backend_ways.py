"""Each engine takes its own way to a worker's change (workers/backend.Backend.change): no
face chooses between here, an SSH host and a pod (act/landaway.change_of)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from looop.home.clock import SystemClock
from looop.remote.kube.backend import HostedKube
from looop.remote.ssh.backend import SshBackend
from looop.workers.backend import LocalBackend

pytestmark = pytest.mark.unit


class Ways:
    def here(self, sid: str) -> tuple[str, ...]:
        return ("here", sid)

    def host(self, sid: str, host: str) -> tuple[str, ...]:
        return ("host", sid, host)

    def pod(self, sid: str, backend: Any) -> tuple[str, ...]:
        return ("pod", sid, type(backend).__name__)


def test_each_engine_takes_its_own_way(tmp_path: Path) -> None:
    here = LocalBackend(tmp_path, SystemClock())
    far = SshBackend.__new__(SshBackend)  # no link made: the way is chosen by the engine alone
    far.host = "h1"
    pod = HostedKube.__new__(HostedKube)
    assert here.change("w1", Ways()) == ("here", "w1")
    assert far.change("w2", Ways()) == ("host", "w2", "h1")
    assert pod.change("w3", Ways()) == ("pod", "w3", "HostedKube")
