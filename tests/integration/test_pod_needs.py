"""A Kubernetes pod worker at its CLI's approval prompt joins the needs-you queue (issue 57
item 3): the beat reads the pod's log once, draws its screen as `looop shot` does and judges
it (remote/kube/podlook.py); `looop needs --json` then lists it with no pod-log read of its
own, the human is told once over two beats, and it leaves once the pod shows busy output.
The pod runs for real under the stand-in cluster's kubelet (fakecluster.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from looop.core.context import Ctx
from looop.loop.tick import tick
from tests.helpers import clean_env, wait_until, wire
from tests.unit.remote.kube.fakecluster import FakeCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "needs" / "claude"


def _approval_screen() -> Path:
    """A recorded screen of the real claude at its approval prompt (labelled by a person)."""
    labels = json.loads((CORPUS / "labels.json").read_text())["screens"]
    name = next(n for n, kind in sorted(labels.items()) if kind == "approval")
    return CORPUS / name


def _looop(ctx: Ctx, *args: str) -> str:
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, LOOOP_CONFIG=str(ctx.paths.config))
    r = subprocess.run(
        [sys.executable, "-m", "looop", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, f"looop {' '.join(args)}: {r.stderr}"
    return r.stdout


def _needs(ctx: Ctx) -> list[dict[str, Any]]:
    return [n for n in json.loads(_looop(ctx, "needs", "--json")) if n["worker"] == "pw"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    (tmp_path / "cluster").mkdir()
    c = FakeCluster(tmp_path / "cluster")
    c.up()
    try:
        yield c
    finally:
        c.close()


def test_a_pod_at_its_approval_prompt_is_in_the_queue_told_once_and_leaves_when_busy(
    ctx: Ctx, cluster: FakeCluster, tmp_path: Path
) -> None:
    told, go = tmp_path / "told.txt", tmp_path / "go"
    screen = _approval_screen()
    # the recorded screen, then (once told to go) claude's busy line on a cleared screen
    line = (
        f"cat {screen}; while [ ! -e {go} ]; do sleep 0.1; done; "
        "printf '\\033[2J\\033[H✻ Working… (esc to interrupt)\\n'; sleep 600; : {{prompt_file}}"
    )
    wire(
        ctx,
        [{"decision": {"action": "noop"}}] * 20,
        notification=f'echo "$LOOOP_ID" >> {told}',
        web={"url": "https://home.example:8443"},
    )
    kubeconfig = str(cluster.kubeconfig)
    image = "ghcr.io/example/looop:test"
    _looop(ctx, "host", "add", "k1", "k8s://stand-in/team-a", "--image", image,
           "--kubeconfig", kubeconfig)  # fmt: skip
    try:
        _looop(ctx, "worker", "start", "pw", "x", "--host", "k1", "--command", line)
        shown = screen.read_text().splitlines()[-3].strip()
        wait_until(lambda: shown in _looop(ctx, "log", "pw"), 60, "the approval prompt")
        assert _needs(ctx) == []  # no beat has looked yet: `needs` reads no pod log itself
        tick(ctx)
        got = _needs(ctx)
        assert [(n["kind"], n["host"]) for n in got] == [("approval", "k1")], got
        ls = _looop(ctx, "ls")
        assert "needs-input" in next(r for r in ls.splitlines() if "pw" in r), ls
        tick(ctx)  # the next beat: still waiting, not told again
        assert [n["kind"] for n in _needs(ctx)] == ["approval"]
        wait_until(lambda: told.exists() and "pw" in told.read_text(), 30, "the notification")
        tick(ctx)
        assert told.read_text().split().count("pw") == 1, told.read_text()
        go.touch()
        wait_until(lambda: "Working" in _looop(ctx, "log", "pw"), 30, "the busy output")
        tick(ctx)
        assert _needs(ctx) == []
    finally:
        _looop(ctx, "down")
