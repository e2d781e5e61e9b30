"""The whole way home from a Kubernetes worker, as a user sets it up: a real `looop web` at
home, `looop host add … k8s://`, `looop worker start --host`, and the stand-in cluster's
kubelet running the pod's `looop pod run` for real. The agent in the pod asks, claims and
reports a cost with `$LOOOP_BIN`; each lands in the home's data dir through the web API with
the worker's own token, and the ask blocks until a human answers at home."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from tests.helpers import clean_env, until
from tests.unit.remote.kube.fakecluster import LOOOP, FakeCluster

pytestmark = pytest.mark.timeout(180)

AGENT = """#!/bin/sh
echo ready
ans=$("$LOOOP_BIN" ask --prompt "ship it?" --options yes,no); echo "answer=$ans code=$?"
"$LOOOP_BIN" claim deploy-lock; echo "claim=$?"
"$LOOOP_BIN" cost report session "$LOOOP_SESSION_ID" agent 0.25; echo "cost=$?"
while read -r line; do echo "got:$line"; done
"""


class Home:
    def __init__(self, tmp: Path, cluster: FakeCluster) -> None:
        self.data = tmp / "data"
        self.data.mkdir()
        self.cluster = cluster
        self.env = clean_env(tmp / "user", self.data, LOOOP_ASK_POLL_MS="50")
        self.web: subprocess.Popen[str] | None = None

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def ok(self, *args: str) -> str:
        r = self.looop(*args)
        assert r.returncode == 0, f"looop {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def start_web(self) -> str:
        self.web = subprocess.Popen(
            [LOOOP, "web", "--port", "0"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.web.stdout is not None
        line = self.web.stdout.readline()
        assert line.startswith("http://127.0.0.1:"), line
        return line.split("/?", 1)[0]

    def stop_web(self) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            self.web.communicate(timeout=20)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    cluster = FakeCluster(tmp_path)
    cluster.up()
    h = Home(tmp_path, cluster)
    agent = tmp_path / "agent.sh"
    agent.write_text(AGENT)
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
    cfg = {
        "default": "agent",
        "runners": {"agent": {"tick": "true", "worker": f"{agent} {{{{prompt_file}}}}"}},
        "max_daily_usd": 0,
    }
    (h.data / "config.json").write_text(json.dumps(cfg))
    try:
        yield h
    finally:
        h.looop("down")
        h.stop_web()
        cluster.close()


def _log_has(h: Home, wid: str, text: str) -> Callable[[], bool]:
    return lambda: text in h.looop("log", wid).stdout


def test_a_pods_ask_claim_and_cost_reach_the_home_through_its_web_api(home: Home) -> None:
    h = home
    url = h.start_web()
    h.ok(
        "host",
        "add",
        "k1",
        "k8s://stand-in/team-a",
        "--image",
        "ghcr.io/example/looop:test",
        "--kubeconfig",
        str(h.cluster.kubeconfig),
    )
    # no web.url in the config: the running server's address is the way home
    h.ok("worker", "start", "w1", "deploy when a human says so", "--host", "k1")
    assert until(_log_has(h, "w1", "ready"), 60, 0.2), h.looop("log", "w1").stdout

    def the_ask() -> dict[str, Any] | None:
        rows = json.loads(h.ok("asks", "--json"))
        return next((r for r in rows if r.get("worker") == "w1"), None)

    assert until(the_ask, 60, 0.2), "the pod's ask never reached the home"
    ask = the_ask()
    assert ask is not None and "ship it?" in json.dumps(ask)
    # the worker waits on a human: nothing after the ask has run in the pod yet
    assert "answer=" not in h.looop("log", "w1").stdout
    h.ok("answer", ask["id"], "yes")
    assert until(_log_has(h, "w1", "cost="), 60, 0.2), h.looop("log", "w1").stdout
    log = h.looop("log", "w1").stdout
    assert "answer=yes code=0" in log and "claim=0" in log and "cost=0" in log
    assert [r for r in json.loads(h.ok("asks", "--json")) if r.get("worker") == "w1"] == []

    # the lease is the home's: held by the pod's worker, refused to anyone else here
    held = h.looop("claim", "deploy-lock", "--session", "someone-else")
    assert held.returncode == 1 and "w1" in held.stderr
    # and the pod's cost is in the home's ledger, by worker
    spent = json.dumps(json.loads(h.ok("cost", "all", "--by", "worker", "--json")))
    assert "w1" in spent and "0.25" in spent
    assert url.startswith("http://127.0.0.1:")

    h.ok("kill", "w1")
    rec = json.loads((h.data / "hosts" / "workers" / "w1.json").read_text())
    assert rec["over"] is True
