"""The Kubernetes backend end to end through the OFFICIAL client, against the local stand-in
of the API (fakecluster.py): a Job made, its pod's process a real `looop pod run` in front of
a real PTY session, the screen and log read from the pod's log, input typed over the exec
websocket, the Job watched to its end and deleted with propagation Foreground; a cluster
whose API drops is `unreachable`, never a dead worker."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from looop.home.errors import LooopError
from looop.remote.hosts import KubeHost
from looop.remote.kube import manifests as mf
from looop.remote.kube.backend import HostedKube, StartSpec
from looop.sessions.state import SessionError
from looop.workers.backend import Backend
from looop.workers.errors import Refused
from tests.clocks import FixedClock
from tests.unit.remote.kube.fakecluster import FakeCluster

pytestmark = [pytest.mark.timeout(90), pytest.mark.process]  # real processes
INSTALL_HINT = "the kubernetes backend needs the k8s extra: pip install 'looop[k8s]'"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    c = FakeCluster(tmp_path)
    c.up()
    try:
        yield c
    finally:
        c.close()


def _kube(home: Path, target: str, kubeconfig: str | None, **kw: object) -> HostedKube:
    h = KubeHost("c1", target, "ghcr.io/example/looop:test", 0, kubeconfig=kubeconfig)
    return HostedKube(home, h, FixedClock(), None, **kw)  # type: ignore[arg-type]


def _backend(c: FakeCluster, home: Path) -> HostedKube:
    url, token = "https://home.example:8443", "way-home-token"
    return _kube(home, "k8s://stand-in/team-a", str(c.kubeconfig), home_url=url, home_token=token)


def _spec(sid: str, line: str, *args: str) -> StartSpec:
    env = {"LOOOP_SESSION_ID": sid, "LOOOP_RUNNER": "sh", "AWS_SECRET_ACCESS_KEY": "home-only"}
    return StartSpec(sid, ["sh", "-c", line, "sh", *args], Path("/nowhere"), env, (60, 12))


def _log_until(b: HostedKube, sid: str, text: str, timeout: float = 20) -> str:
    """The pod's log, read as `looop log` would, until `text` shows (as `expect` polls)."""
    deadline = time.monotonic() + timeout
    while True:
        got, _ = b.log(sid)
        if text in got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_worker_runs_as_a_job_and_every_verb_reaches_it(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    b: Backend = _backend(cluster, home)
    assert b.kind == "kubernetes"
    kb = b
    assert isinstance(kb, HostedKube)
    brief_there = f"{mf.PROMPTS_DIR}/w1.md"  # where the pod mounts it
    line = (
        'cat "$1"; echo "home=$LOOOP_HOME_URL secret=${AWS_SECRET_ACCESS_KEY:-none}"; '
        'LOOOP_HOME_URL= "$LOOOP_BIN" ask w1 --prompt "ok?" --options yes,no; echo "ask rc=$?"; '
        'echo ready; read answer; echo "got:$answer"; exit 3'
    )
    s = kb.start(_spec("w1", line, brief_there), brief="THE BRIEF\n")
    assert s.alive and s.id == "w1"
    pod = cluster.running(mf.job_name("w1"))
    assert kb.reach("w1") == "alive"
    text = _log_until(kb, "w1", "ready")
    # the brief came through its ConfigMap, the way home through its Secret, and the home's
    # own environment stayed home
    assert "THE BRIEF" in text
    assert "home=https://home.example:8443 secret=none" in text
    # with no way home a home-bound contract verb refuses at once instead of waiting on the
    # pod's mailbox (tests/integration/test_contract_web.py goes home for real)
    assert "cannot reach the home from this pod" in text and "ask rc=3" in text
    shot = kb.screen("w1")
    assert any("ready" in row for row in shot["text"].splitlines())
    assert kb.exit_status("w1") is None
    kb.send("w1", "hello there")
    assert kb.wait("w1", 20) == 3
    assert "got:hello there" in _log_until(kb, "w1", "got:")
    assert kb.exit_status("w1") == 3 and kb.reach("w1") == "over"
    # the pod's data dir holds the session's own output.log, byte for byte the pod's log
    local = (pod.data / "sessions" / "w1" / "output.log").read_bytes()
    assert local == pod.log.read_bytes()
    # offsets continue where the last read stopped
    full, end = kb.log("w1")
    more, end2 = kb.log("w1", end)
    assert more == "" and end2 == end and full.endswith("got:hello there\n")
    assert kb.kill("w1")["ok"]
    assert cluster.deletes[-1].get("propagationPolicy") == "Foreground"
    assert kb.reach("w1") == "over"
    assert not cluster.objects  # the ConfigMap and Secret went with their Job


def test_a_key_interrupts_and_kill_ends_a_running_pod(cluster: FakeCluster, tmp_path: Path) -> None:
    kb = _backend(cluster, tmp_path / "home")
    kb.start(_spec("k1", "trap 'echo INT; exit 9' INT; echo up; while :; do sleep 0.1; done"))
    cluster.running(mf.job_name("k1"))
    _log_until(kb, "k1", "up")
    kb.key("k1", ["C-c"])
    assert kb.wait("k1", 20) == 9
    assert "INT" in _log_until(kb, "k1", "INT")

    kb.start(_spec("k2", "echo up; exec sleep 300"))
    pod = cluster.running(mf.job_name("k2"))
    _log_until(kb, "k2", "up")
    kb.kill("k2")
    assert pod.proc is not None and pod.proc.poll() is not None  # SIGTERM ended it for real
    assert kb.reach("k2") == "over"
    with pytest.raises(SessionError, match="no worker k2"):
        kb.kill("k2")

    # the contract's last step, `"$LOOOP_BIN" kill ID`, ends the session inside its pod
    kb.start(_spec("k3", 'echo up; "$LOOOP_BIN" kill k3; exec sleep 300'))
    assert kb.wait("k3", 20) != 124 and kb.reach("k3") == "over"


def test_a_job_past_its_deadline_reads_as_a_timeout(cluster: FakeCluster, tmp_path: Path) -> None:
    kb = _backend(cluster, tmp_path / "home")
    kb.start(_spec("t1", "echo up; exec sleep 300"))
    cluster.running(mf.job_name("t1"))
    _log_until(kb, "t1", "up")
    cluster.expire("team-a", mf.job_name("t1"))
    assert kb.wait("t1", 20) == 124 and kb.reach("t1") == "over"
    kb.kill("t1")


def test_a_lost_api_is_unreachable_not_dead(cluster: FakeCluster, tmp_path: Path) -> None:
    kb = _backend(cluster, tmp_path / "home")
    kb.start(_spec("u1", "echo before; read x; echo after:$x"))
    cluster.running(mf.job_name("u1"))
    _log_until(kb, "u1", "before")
    cluster.down()
    assert kb.reach("u1") == "unreachable"
    with pytest.raises(SessionError, match="cannot reach k8s://stand-in/team-a"):
        kb.log("u1")
    assert kb.wait("u1", 0.5) == 124  # a wait across the cut times out; it never says "ended"
    cluster.up()
    assert kb.reach("u1") == "alive"
    kb.send("u1", "again")
    assert kb.wait("u1", 20) == 0
    assert "before" in _log_until(kb, "u1", "after:again")


def test_a_second_start_of_the_same_worker_is_refused(cluster: FakeCluster, tmp_path: Path) -> None:
    kb = _backend(cluster, tmp_path / "home")
    kb.start(_spec("d1", "exec sleep 300"))
    with pytest.raises(SessionError, match="already has a Job") as got:
        kb.start(_spec("d1", "true"))
    assert "\n" not in str(got.value)
    kb.kill("d1")


def test_two_homes_in_one_namespace_never_see_each_others_pods(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    a = _backend(cluster, tmp_path / "a")
    a.start(_spec("x", "echo from-a; exec sleep 300"))
    cluster.running(mf.job_name("x"))
    other = _backend(cluster, tmp_path / "b")
    with pytest.raises(SessionError, match="no pod for worker x"):
        other.log("x")
    a.kill("x")


def test_wrong_credentials_and_a_missing_context_are_one_line(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    bad = cluster.kubeconfig.read_text().replace("stand-in-token", "wrong")
    (tmp_path / "bad").write_text(bad)
    kb = _kube(tmp_path, "k8s://stand-in/team-a", str(tmp_path / "bad"))
    with pytest.raises(SessionError, match="401") as got:
        kb.start(_spec("c1", "true"))
    assert "\n" not in str(got.value)
    assert kb.reach("c1") == "unreachable"  # refused is not dead either
    nope = _kube(tmp_path, "k8s://no-such/ns", str(cluster.kubeconfig))
    with pytest.raises(SessionError, match="cannot use kubeconfig context 'no-such'"):
        nope.kill("c1")


def test_without_the_extra_the_backend_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if `looop[k8s]` were not installed
    kb = _kube(tmp_path, "k8s://x/y", None)
    with pytest.raises(LooopError) as got:
        kb.kill("w1")
    assert str(got.value) == INSTALL_HINT


def test_a_pods_review_needs_the_home_whose_rounds_it_adds(tmp_path: Path) -> None:
    """A pod's change is read in the pod (tests/integration/test_pod_land.py); an engine made
    for sessions alone, with no home, refuses its review in one line, asking no cluster."""
    kb = _kube(tmp_path, "k8s://x/y", None)
    with pytest.raises(Refused) as got:
        kb.review("w1")
    said = str(got.value)
    assert "w1" in said and "not read by this engine" in said and "\n" not in said


def test_a_log_read_from_its_start_reads_the_new_pod_of_a_reused_id(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    """A long-lived reader (the web) whose follow stream ended with the last pod of an id
    reads the next pod's log, not the old one's kept bytes."""
    kb = _backend(cluster, tmp_path / "home")
    kb.start(_spec("r1", "echo first-pod"))
    assert kb.wait("r1", 20) == 0
    _, end = kb.log("r1")
    for _ in range(2):  # caught up twice: the follow stream starts, and ends with its pod
        kb.log("r1", end)
    followed = kb._follows["r1"]
    assert followed.thread is not None
    followed.thread.join(20)
    assert followed.ended
    kb.start(_spec("r1", "echo second-pod"))  # the finished Job of that id is replaced
    got = _log_until(kb, "r1", "second-pod")
    assert "second-pod" in got and "first-pod" not in got
