"""`looop watch` says a far worker's host is out of reach by the kind its engine raised
(workers/errors.HostUnreachable), for a cluster's API as for an SSH link, and a worker's own
refusal as it said it."""

from __future__ import annotations

from typing import Any

import pytest
from textual.message import Message

from looop.core.context import Ctx
from looop.remote.kube.cluster import Unreachable as ApiUnreachable
from looop.sessions.state import SessionError
from looop.tui.app import WatchApp
from tests.fakebackend import FakeBackend

pytestmark = pytest.mark.unit


class Refusing(FakeBackend):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        raise self.error


class Away:
    def __init__(self, b: FakeBackend) -> None:
        self.b = b

    def rows(self) -> list[dict[str, Any]]:
        return []

    def backend(self, sid: str) -> FakeBackend:
        return self.b


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ApiUnreachable("the cluster's API does not answer"), "unreachable — the cluster's"),
        (SessionError("no worker w1 in k8s://c/ns"), "no worker w1 in k8s://c/ns"),
    ],
    ids=["a cluster out of reach", "the worker's own refusal"],
)
def test_a_far_screen_that_did_not_come_is_said_by_its_kind(
    ctx: Ctx, error: Exception, shown: str
) -> None:
    app = WatchApp(ctx, "w1", far=Away(Refusing(error)))  # type: ignore[arg-type]
    posted: list[Message] = []
    app._post = posted.append  # type: ignore[method-assign]
    app._far_shot_job("w1")
    [msg] = posted
    assert isinstance(msg, WatchApp.FarShot) and msg.shot is None
    assert msg.error is not None and msg.error.startswith(shown)
