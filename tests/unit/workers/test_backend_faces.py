"""Every engine answers the whole `Backend` interface, so a verb that reaches a worker asks
its backend and never decides "here or away" itself (issue 53 item 4)."""

from __future__ import annotations

import inspect

import pytest

from looop.remote.kube.backend import HostedKube
from looop.remote.ssh.backend import SshBackend
from looop.workers.backend import Backend, LocalBackend

FACES = sorted(
    n for n, v in vars(Backend).items() if inspect.isfunction(v) and not n.startswith("_")
)


def test_the_interface_names_the_watching_verbs_and_a_kills_second_look() -> None:
    assert {"tail", "follow", "expect", "wait_idle", "found_over", "kill", "log"} <= set(FACES)


@pytest.mark.parametrize("engine", [LocalBackend, SshBackend, HostedKube])
def test_each_engine_answers_every_face_with_its_signature(engine: type) -> None:
    for name in FACES:
        got = getattr(engine, name, None)
        assert callable(got), f"{engine.__name__} lacks {name}"
        want = list(inspect.signature(getattr(Backend, name)).parameters)
        have = inspect.signature(got).parameters
        assert list(have)[: len(want)] == want, (engine.__name__, name)
        extra = [p for n, p in have.items() if n not in want]  # an engine's own, optional
        assert all(p.default is not inspect.Parameter.empty for p in extra), (engine, name)
