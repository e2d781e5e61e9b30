"""An SSH worker's resize and detach are its satellite's own requests, asked by the home's
`SshBackend` (the `Backend` operations every engine answers); a host whose looop is older
and knows neither is refused in one line naming the way out."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.remote import hosts as reg
from looop.remote.ssh import link
from looop.remote.ssh.backend import SshBackend
from looop.workers.errors import Refused

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
