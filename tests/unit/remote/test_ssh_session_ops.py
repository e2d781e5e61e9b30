"""An SSH worker's resize and detach are its satellite's own requests, asked by the home's
`SshBackend` (the `Backend` operations every engine answers), and so are its change's diff
and review (read where its checkout is, checked and bounded here); a host whose looop is
older and knows none of them is refused in one line naming the way out."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.remote import hosts as reg
from looop.remote.ssh import link
from looop.remote.ssh.backend import SshBackend
from looop.workers.errors import ChangeError, Refused
from looop.workers.review import MAX_DIFF

pytestmark = pytest.mark.unit


def _host(ctx: Ctx, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]) -> list[Any]:
    """Host h1 answering every request with `answer`; the requests it was sent."""
    reg.add(ctx.paths.data, "h1", "ssh://u@h1.example", 1)
    reg.write_record(ctx.paths.data, "w1", "h1", started_at=None)
    monkeypatch.setattr(link, "_answers", lambda _path: True)
    sent: list[Any] = []

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        sent.append(json.loads(kw.get("input") or b"{}"))
        return subprocess.CompletedProcess(argv, 0, json.dumps(answer).encode(), b"")

    monkeypatch.setattr(link.subprocess, "run", run)
    return sent


def test_resize_and_detach_are_asked_of_the_hosts_satellite(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _host(ctx, monkeypatch, {"cols": 100, "rows": 30})
    assert SshBackend(ctx, "h1").resize("w1", 100, 30) == {"cols": 100, "rows": 30}
    asked = [r for r in sent if r.get("id") == "w1"]
    assert asked and asked[-1]["cols"] == 100 and asked[-1]["rows"] == 30


@pytest.mark.parametrize("op", ["resize", "detach"])
def test_an_older_host_that_knows_neither_is_refused_naming_host_install(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, op: str
) -> None:
    _host(ctx, monkeypatch, {"error": f"unknown satellite verb {op!r}"})
    b = SshBackend(ctx, "h1")
    with pytest.raises(Refused) as got:
        b.resize("w1", 100, 30) if op == "resize" else b.detach("w1")
    assert "`looop host install h1`" in str(got.value) and "\n" not in str(got.value)


def test_a_far_workers_diff_is_its_satellites_answer(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "diff --git a/x b/x\n+one\n"
    sent = _host(ctx, monkeypatch, {"diff": body, "cut": False})
    assert SshBackend(ctx, "h1").diff("w1") == {"id": "w1", "diff": body, "cut": False}
    assert sent[-1]["id"] == "w1"


OTHER = {"wid": "w2", "branch": "b", "base": "a", "tip": "c", "commits": [], "files": [],
         "verify": {}, "rounds": []}  # fmt: skip


@pytest.mark.parametrize(
    "answer",
    [
        {"diff": 3},  # not text
        OTHER,  # a review not under "review", as no host answers
        {"wid": "w1", "commits": "many"},
    ],
)
def test_a_hosts_bad_answer_about_a_change_is_one_line(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]
) -> None:
    _host(ctx, monkeypatch, answer)
    b = SshBackend(ctx, "h1")
    with pytest.raises(ChangeError) as got:
        b.diff("w1") if "diff" in answer else b.review("w1")
    assert "host h1 answered" in str(got.value) and "\n" not in str(got.value)


def test_a_far_diff_is_bounded_as_a_local_one(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    _host(ctx, monkeypatch, {"diff": "x" * (MAX_DIFF + 10), "cut": False})
    got = SshBackend(ctx, "h1").diff("w1")
    assert len(got["diff"]) == MAX_DIFF and got["cut"] is True


@pytest.mark.parametrize("op", ["diff", "review"])
def test_an_older_host_without_the_change_verbs_is_refused_naming_host_install(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, op: str
) -> None:
    _host(ctx, monkeypatch, {"error": f"unknown satellite verb {op!r}"})
    b = SshBackend(ctx, "h1")
    with pytest.raises(Refused) as got:
        b.diff("w1") if op == "diff" else b.review("w1")
    assert "`looop host install h1`" in str(got.value) and "\n" not in str(got.value)


def test_a_far_workers_raw_output_is_refused_naming_shot_and_log(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _host(ctx, monkeypatch, {})
    with pytest.raises(Refused) as got:
        SshBackend(ctx, "h1").output("w1", None, 1024)
    said = str(got.value)
    assert "`looop shot w1`" in said and "`looop log w1`" in said and "\n" not in said
    assert sent == []  # the host is not asked


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        (b"", "host h1 does not answer (the link dropped)"),  # a master that died mute
        (b"debug\nssh: connect to host h1 port 22: No route to host\n", "No route to host"),
    ],
)
def test_ssh_failing_on_a_far_review_is_one_line_with_a_cause(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, stderr: bytes, said: str
) -> None:
    """The line the review panel shows for a cut-off host: never "does not answer: " with
    nothing after it."""
    _host(ctx, monkeypatch, {})

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(argv, 255, b"", stderr)

    monkeypatch.setattr(link.subprocess, "run", run)
    with pytest.raises(link.Unreachable) as got:
        SshBackend(ctx, "h1").review("w1")
    line = str(got.value)
    assert said in line and "\n" not in line and not line.rstrip().endswith(":"), line
