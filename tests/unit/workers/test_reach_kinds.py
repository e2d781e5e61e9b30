"""Why a worker could not be reached is said by its kind (workers/errors.py), and every face
answers from the kind alone: the web's status comes from one table (web/reads.REACH_CODES)
whatever engine runs the worker, here or away; no face asks where a worker runs to choose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from looop.act.moves import far
from looop.cli import sessions
from looop.cli.root import cli
from looop.core.context import Ctx
from looop.remote.kube.cluster import Unreachable as ApiUnreachable
from looop.web import actions, reads
from looop.web.reads import WebError
from looop.workers.backend import Reach
from looop.workers.errors import HostUnreachable, NoSuchWorker, Refused, WorkerOver
from tests.fakebackend import FakeBackend

pytestmark = pytest.mark.unit


class Saying(FakeBackend):
    """A backend of `kind` whose worker reads as `reach` and whose typing raises `error`."""

    def __init__(self, kind: str, reach: Reach = "alive", error: Exception | None = None):
        super().__init__()
        self.kind, self.said, self.error = kind, reach, error

    def look(self, sid: str) -> Reach:
        self.calls.append(("look", sid))
        return self.said

    def send(self, sid: str, text: str | bytes, newline: bool = True) -> dict[str, Any]:
        self.calls.append(("send", sid, text, newline))
        if self.error is not None:
            raise self.error
        return {"sent": len(text), "offset": 0}

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        self.calls.append(("screen", sid, fmt, trim))
        return {"rows": 1, "cols": 4, "cells": [{"row": 0, "col": 0, "char": "$"}]}


def _way(monkeypatch: pytest.MonkeyPatch, b: FakeBackend) -> None:
    """`b` as the worker's backend, found by the one lookup (remote.worker_away: no record
    of a host, so this machine's, through a Ctx or not): what it says, not where it is,
    decides the answer."""
    monkeypatch.setattr(far, "here", lambda ctx: b)
    monkeypatch.setattr(sessions, "LocalBackend", lambda data, clock: b)


def _status(fn: Any, *args: Any) -> tuple[int, str]:
    try:
        fn(*args)
    except WebError as e:
        return e.status, e.message
    return 200, ""


KINDS = ["local", "ssh", "kubernetes"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NoSuchWorker("no session 'w1'"), 404),
        (WorkerOver("session w1 has already finished"), 409),
        (HostUnreachable("host h1 does not answer"), 503),
        (Refused("worker w1 runs in a Kubernetes Job: do this instead"), 409),
        # a cluster's API out of reach is a session error too: its kind decides, 503
        (ApiUnreachable("host h1's API does not answer"), 503),
    ],
    ids=["no such worker", "ended", "host out of reach", "refused", "a cluster's API"],
)
def test_the_webs_answer_comes_from_the_kind_not_from_where_the_worker_runs(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, kind: str, error: Exception, status: int
) -> None:
    _way(monkeypatch, Saying(kind, "alive", error))
    got, line = _status(actions.send_text, ctx, "w1", {"text": "half", "enter": False})
    assert got == status and "\n" not in line and line
    if status == 503:
        assert "not taken for dead" in line and "h1" in line


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("reach", "status"), [("alive", 200), ("over", 409), ("unreachable", 503)])
def test_a_worker_read_as_over_or_out_of_reach_is_refused_alike_by_any_engine(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, kind: str, reach: Reach, status: int
) -> None:
    b = Saying(kind, reach)
    _way(monkeypatch, b)
    got, _ = _status(actions.send_text, ctx, "w1", {"text": "half", "enter": False})
    assert got == status
    assert (("send", "w1", "half", False) in b.calls) == (status == 200)  # refused: not typed
    shot, _ = _status(reads.screen, ctx, "w1")
    assert shot == (503 if reach == "unreachable" else 200)


def test_a_screen_says_whether_its_worker_lives_from_its_backend(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    _way(monkeypatch, Saying("local", "over"))
    assert reads.screen(ctx, "w1")["alive"] is False


class Terminal(FakeBackend):
    def attach(
        self, sid: str, passthrough: bool, env: Mapping[str, str], detach_keys: str = ""
    ) -> int:
        self.calls.append(("attach", sid, passthrough))
        return 7  # the worker's exit code, as an attach that saw it end returns it


@pytest.mark.parametrize(
    ("argv", "call", "code", "out"),
    [
        (["resize", "w1", "100x30"], ("resize", "w1", 100, 30), 0, "resized w1 to 100x30"),
        (["detach", "w1"], ("detach", "w1"), 0, "detached clients of w1"),
        (["attach", "--passthrough", "w1"], ("attach", "w1", True), 7, ""),
    ],
)
def test_resize_detach_and_attach_reach_a_worker_through_its_backend(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    call: tuple[Any, ...],
    code: int,
    out: str,
) -> None:
    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    b = Terminal()
    _way(monkeypatch, b)
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert (res.exit_code, b.calls) == (code, [call]), res.output
    assert out in res.output


def test_an_engine_that_cannot_resize_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Fixed(FakeBackend):
        def resize(self, sid: str, cols: int, rows: int) -> dict[str, Any]:
            raise Refused(f"worker {sid} runs in a Kubernetes Job: its size is fixed")

    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    _way(monkeypatch, Fixed())
    res = CliRunner().invoke(cli, ["resize", "w1", "100x30"])
    # the console prints a LooopError as `looop: <its line>` (verbs/console.py)
    assert isinstance(res.exception, Refused), res.output
    assert str(res.exception) == "worker w1 runs in a Kubernetes Job: its size is fixed"


def test_continue_says_a_cluster_out_of_reach_is_its_host_not_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster's API that does not answer raises a session error too (remote/kube): its kind,
    not its class's place, makes it a host that did not answer."""
    from looop.remote.kube.cluster import Unreachable

    class Frozen(FakeBackend):
        def go_on(self, sid: str) -> bool:
            raise Unreachable("the cluster's API does not answer")

    monkeypatch.setenv("LOOOP_DATA_DIR", str(tmp_path / "data"))
    _way(monkeypatch, Frozen())
    res = CliRunner().invoke(cli, ["worker", "continue", "w1"])
    assert "its host did not answer" in str(res.exception), res.output
