"""The worker MCP server in a Kubernetes worker: with "mcp": {"worker_tools": true} the home
wires `looop mcp --worker` into the pod's claude line, run as the pod's "$LOOOP_BIN" (the
contract shim `looop pod run` writes); the stand-in cluster's kubelet runs the pod for real, a
stand-in claude speaks MCP to that server and calls `claim`, and the lease is held at home by
the pod's worker, reached through the web API with the worker's own token."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from tests.helpers import until
from tests.integration.test_kube_contract import Home, _log_has
from tests.unit.remote.kube.fakecluster import FakeCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]
STAND_IN = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_claude.py"


@pytest.fixture
def pod_home(tmp_path: Path) -> Iterator[Home]:
    cluster = FakeCluster(tmp_path)
    cluster.up()
    h = Home(tmp_path, cluster)
    bin_dir = tmp_path / "agentbin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text(f"#!{sys.executable}\n" + STAND_IN.read_text())
    claude.chmod(0o755)
    cfg = {
        "default": "claude",
        "runners": {"claude": {"tick": "true", "worker": f"{claude} {{{{prompt_file}}}}"}},
        "max_daily_usd": 0,
        "mcp": {"worker_tools": True},
    }
    (h.data / "config.json").write_text(json.dumps(cfg))
    try:
        yield h
    finally:
        h.looop("down")
        h.stop_web()
        cluster.close()
        shutil.rmtree(bin_dir, ignore_errors=True)


def test_a_pods_claude_claims_through_the_worker_server(pod_home: Home) -> None:
    h = pod_home
    h.start_web()
    kubeconfig = str(h.cluster.kubeconfig)
    image = "ghcr.io/example/looop:test"
    h.ok("host", "add", "k1", "k8s://stand-in/team-a", "--image", image, "--kubeconfig", kubeconfig)
    h.ok("worker", "start", "w1", "take your lease", "--host", "k1")
    assert until(_log_has(h, "w1", "MCP-CLAIM:"), 60, 0.2), h.looop("log", "w1").stdout
    log = h.looop("log", "w1").stdout
    assert "MCP-TOOLS: ask,claim,cost_report,tell,told,unclaim" in log, log
    assert "MCP-CLAIM: ok" in log, log
    # the lease is the home's, held by the pod's worker: refused to anyone else here
    held = h.looop("claim", "w1-lease", "--session", "someone-else")
    assert held.returncode == 1 and "w1" in held.stderr, held.stderr
    h.ok("kill", "w1")
