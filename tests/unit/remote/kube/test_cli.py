"""Kubernetes hosts through the CLI, end to end against the stand-in API (fakecluster.py, whose
kubelet runs each pod's `looop pod run` for real in front of a PTY): `looop host add NAME
k8s://…`, `host ls`, `host check`, `worker start --host`, and every session verb a user or
the decider drives a pod's worker with — `ls`, `shot`, `log`, `send`, `key`, `expect`,
`wait`, `kill`, `attach`, `looop down`, kill_worker / steer_session / send_key — with a
cluster whose API drops read as `unreachable`, never dead; placement between a capped
Kubernetes host and the home; and each bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from looop.act.executor import execute
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx, ctx_for
from looop.remote import tokens
from looop.remote.kube import manifests as mf
from looop.sense.probes import probe_sessions
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env, kill_sessions, until
from tests.unit.remote.kube.fakecluster import LOOOP, FakeCluster

pytestmark = [pytest.mark.timeout(180), pytest.mark.process]  # real processes
INSTALL_HINT = "the kubernetes backend needs the k8s extra: pip install 'looop[k8s]'"

IMAGE = "ghcr.io/example/looop:test"
HOME_URL = "https://home.example:8443"
TARGET = "k8s://stand-in/team-a"

# The stand-in agent: its brief's first line, the way home it was handed, then an echo loop.
AGENT = """#!/bin/sh
echo "brief: $(grep -c 'THE BRIEF' "$1") id=$LOOOP_SESSION_ID"
echo "home=$LOOOP_HOME_URL token=$LOOOP_HOME_TOKEN"
echo ready
while read -r line; do echo "got:$line"; [ "$line" = quit ] && exit 5; done
"""


class Home:
    def __init__(self, tmp: Path, cluster: FakeCluster, cli: Cli, clock: FixedClock) -> None:
        self.tmp = tmp
        self.cluster = cluster
        self.cli = cli
        self.data = cli.data
        self.clock = clock

    def ok(self, *args: str) -> str:
        code, out, err = self.cli(*args)
        assert code == 0, f"looop {' '.join(args)} -> {code}: {err}"
        return out

    def fails(self, *args: str) -> str:
        """The verb fails with exactly one line on stderr, no traceback; that line."""
        code, _, err = self.cli(*args)
        assert code != 0, f"looop {' '.join(args)} succeeded"
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    def rows(self, *flags: str) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in json.loads(self.ok("ls", "--json", *flags))}

    def record(self, wid: str) -> dict[str, Any] | None:
        p = self.data / "hosts" / "workers" / f"{wid}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def log_until(self, wid: str, text: str, timeout: float = 30) -> str:
        got = ""

        def seen() -> bool:
            nonlocal got
            code, got, _ = self.cli("log", wid)
            return code == 0 and text in got

        assert until(seen, timeout, 0.2), f"{text!r} not in {wid}'s log: {got!r}"
        return got

    def ctx(self) -> Ctx:
        return ctx_for(self.cli.child_env(), self.clock, events_to=None)

    def sys_sessions(self, wid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the decider reads: the worker's sys-sessions entry and its host's load."""
        got = probe_sessions(self.ctx())
        entry = next(e for e in got["signal"] if e["id"] == wid)
        place = next(p for p in got["detail"]["hosts"] if p["name"] == entry["host"])
        return entry, place

    def move(self, obj: dict[str, Any]) -> None:
        c = self.ctx()
        execute(c, c.knobs(), decision_from_obj(obj), actor="pulse")


def _config(data: Path, agent: Path, web_url: str | None = HOME_URL) -> None:
    cfg: dict[str, Any] = {
        "default": "agent",
        "runners": {"agent": {"tick": "true", "worker": f"{agent} {{{{prompt_file}}}}"}},
        "max_daily_usd": 0,
    }
    if web_url is not None:
        cfg["web"] = {"url": web_url}
    (data / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Home]:
    cluster = FakeCluster(tmp_path)
    cluster.up()
    data = tmp_path / "data"
    data.mkdir()
    agent = tmp_path / "agent.sh"
    agent.write_text(AGENT)
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
    _config(data, agent)
    clock = FixedClock()
    env = clean_env(tmp_path / "user", data, LOOOP_SESSION_HOST_IDLE="0")
    monkeypatch.chdir(tmp_path)
    h = Home(tmp_path, cluster, Cli(capsys, monkeypatch, data, env, clock), clock)
    try:
        yield h
    finally:
        cluster.close()
        kill_sessions(data)


def _add(h: Home, name: str = "k1", *extra: str) -> None:
    h.ok(
        "host",
        "add",
        name,
        TARGET,
        "--image",
        IMAGE,
        "--kubeconfig",
        str(h.cluster.kubeconfig),
        *extra,
    )


def test_a_kubernetes_host_runs_a_worker_every_verb_reaches(home: Home) -> None:
    h = home
    _add(h, "k1", "--cap", "2", "--cpu", "500m", "--memory", "1Gi", "--deadline", "600")
    rows = json.loads(h.ok("host", "ls", "--json"))
    assert rows == [
        {"cap": 2, "image": IMAGE, "kind": "k8s", "name": "k1", "url": TARGET, "workers": 0}
    ]
    assert "k1" in h.ok("host", "ls") and IMAGE in h.ok("host", "ls")
    assert "k1: ok" in h.ok("host", "check", "k1")
    assert json.loads(h.ok("host", "check", "k1", "--json"))["ok"] is True

    h.ok("worker", "start", "w1", "THE BRIEF: say hello", "--host", "k1")
    rec = h.record("w1")
    assert rec is not None and rec["host"] == "k1" and not rec["over"]
    job = h.cluster.jobs[("team-a", mf.job_name("w1"))]
    res = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    # the host's memory wins over worker_max_memory; the disk bound is its ephemeral storage
    assert res["limits"] == {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": str(2 << 30)}
    assert job["spec"]["activeDeadlineSeconds"] == 600
    row = h.rows()["w1"]
    assert row["alive"] and row["host"] == "k1" and row["health"] == "busy"
    assert "HOST" in h.ok("ls") and "k1" in h.ok("ls")
    entry, place = h.sys_sessions("w1")
    assert entry.pop("state") in ("starting", "running")
    assert entry == {"id": "w1", "exit_code": None, "health": "busy", "host": "k1"}
    assert place == {"name": "k1", "kind": "k8s", "workers": 1, "cap": 2, "reachable": True}
    assert json.loads(h.ok("host", "ls", "--json"))[0]["workers"] == 1

    # the brief reached the pod, and so did the way home: web.url and this worker's token
    text = h.log_until("w1", "ready")
    assert "brief: 1 id=w1" in text
    assert f"home={HOME_URL} token={tokens.mint(h.ctx().paths, 'w1')}" in text
    assert "ready" in h.ok("shot", "w1")
    shot = json.loads(h.ok("shot", "w1", "--json"))
    assert (shot["cols"], shot["rows"]) == (120, 40)  # the worker's size, as at home

    h.ok("send", "w1", "hello there")
    h.log_until("w1", "got:hello there")
    h.ok("send", "-n", "w1", "typed")
    h.ok("key", "w1", "Enter")
    assert "got:typed" in h.log_until("w1", "got:typed")
    assert h.ok("log", "w1", "--tail", "1").strip() == "got:typed"
    assert h.ok("log", "w1", "--grep", "^got:").split() == ["got:hello", "there", "got:typed"]
    got = json.loads(h.ok("log", "w1", "--json", "--since", "0"))
    assert "got:typed" in got["text"] and got["offset"] > 0 and got["done"] is False
    log = h.cluster.running(mf.job_name("w1")).log  # last written two hours ago
    os.utime(log, (time.time() - 7200, time.time() - 7200))
    h.cluster.log_reads.clear()
    assert h.ok("log", "w1", "--since", "1h") == ""  # the API's sinceSeconds: nothing since
    assert "got:typed" in h.ok("log", "w1", "--since", "3h")
    asked = [r.get("sinceSeconds") for r in h.cluster.log_reads]
    assert asked.count("3600") == 1 and asked.count("10800") == 1, h.cluster.log_reads
    assert h.ok("expect", "w1", "got:t.ped", "--timeout", "10").strip() == "got:typed"
    assert h.ok("expect", "w1", "^got:typed", "--screen", "--timeout", "10").strip()
    code, _, _ = h.cli("expect", "w1", "never-said", "--timeout", "1s")
    assert code == 124
    code, _, _ = h.cli("wait-idle", "w1", "--settle", "300ms", "--timeout", "10s")
    assert code == 0

    # the decider's moves reach it too
    h.move({"action": "steer_session", "id": "w1", "input": "steered"})
    h.log_until("w1", "got:steered")
    h.ok("send", "-n", "w1", "keyed")
    h.move({"action": "send_key", "id": "w1", "keys": ["Enter"]})
    h.log_until("w1", "got:keyed")

    attach = h.fails("attach", "w1")
    assert "kubectl --kubeconfig" in attach and "--context stand-in -n team-a exec -it" in attach
    assert f"job/{mf.job_name('w1')} -c worker -- looop attach w1" in attach
    # the pod's own `looop attach` gates the output; asked to pass it all, so does the line
    assert "-- looop attach w1 --passthrough`" in h.fails("attach", "--passthrough", "w1")
    assert "Kubernetes Job" in h.fails("resize", "w1", "100x30")

    # the API cut: the worker is unreachable, never dead; back: alive as it really is
    h.cluster.down()
    row = h.rows()["w1"]
    assert row["health"] == "unreachable" and row["alive"] is True
    assert "does not answer" in h.fails("host", "check", "k1")
    assert "cannot reach k8s://stand-in/team-a" in h.fails("send", "w1", "lost")
    entry, place = h.sys_sessions("w1")
    assert entry["health"] == "unreachable" and place["reachable"] is False
    assert not h.record("w1")["over"]  # type: ignore[index]
    h.cluster.up()
    row = h.rows()["w1"]
    assert row["health"] == "busy" and row["alive"] is True

    with pytest.raises(ExecError, match="runs in a Kubernetes Job"):
        h.move({"action": "restart_session", "id": "w1"})
    h.ok("worker", "kill", "w1")
    assert h.record("w1")["over"] is True  # type: ignore[index]
    assert not h.cluster.jobs
    assert "w1" not in h.rows()
    gone = h.rows("-a")["w1"]
    assert gone["alive"] is False and gone["host"] == "k1"
    # killing it again is a level-triggered success for the decider
    h.move({"action": "kill_worker", "id": "w1"})


def test_a_kubernetes_worker_killed_at_its_memory_limit_is_named_in_ls(home: Home) -> None:
    h = home
    _add(h, "k1")
    h.ok("worker", "start", "wm", "THE BRIEF: say hello", "--host", "k1")
    pod = h.cluster.running(mf.job_name("wm"))
    assert pod.proc is not None
    pod.end_reason = "OOMKilled"  # what the runtime says of a container past limits.memory
    os.killpg(pod.proc.pid, signal.SIGKILL)
    assert until(lambda: not h.rows("--all")["wm"]["alive"], 20)
    row = h.rows("--all")["wm"]
    assert row["health"] == "hit its memory limit" and row["limit"] == "memory", row
    again = h.rows("--all")["wm"]  # the cluster is not asked about it again: the home kept it
    assert again["health"] == "hit its memory limit", again


def test_a_kubernetes_worker_is_bounded_by_the_home_knobs(home: Home) -> None:
    """The home's worker_max_* (env here) reach the Job: memory and disk as the container's
    limits, the process bound as the pod's own knob (no pod field holds one)."""
    h = home
    _add(h, "k1")
    h.cli.env.update(
        LOOOP_WORKER_MAX_PIDS="64",
        LOOOP_WORKER_MAX_MEMORY=str(768 << 20),
        LOOOP_WORKER_MAX_DISK=str(3 << 30),
    )
    h.ok("worker", "start", "wb", "THE BRIEF: say hello", "--host", "k1")
    job = h.cluster.jobs[("team-a", mf.job_name("wb"))]
    worker = job["spec"]["template"]["spec"]["containers"][0]
    want = {"memory": str(768 << 20), "ephemeral-storage": str(3 << 30)}
    assert worker["resources"] == {"limits": want}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["LOOOP_WORKER_MAX_PIDS"] == "64"


def test_wait_and_down_reach_pod_workers(home: Home) -> None:
    h = home
    _add(h)
    h.ok("worker", "start", "w2", "THE BRIEF", "--host", "k1")
    h.log_until("w2", "ready")
    code, _, _ = h.cli("wait", "w2", "--timeout", "1s")
    assert code == 124  # still running: a timeout, never an end
    # `log -f` follows the pod's log until the worker ends, with its exit code
    follow = subprocess.Popen(
        [LOOOP, "log", "w2", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=h.cli.child_env(),
        cwd=h.tmp,
    )
    try:
        h.ok("send", "w2", "bye")
        h.log_until("w2", "got:bye")
        h.ok("send", "w2", "quit")
        out, err = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 5, err
    assert out.index("ready") < out.index("got:bye") < out.index("got:quit")
    assert h.rows("-a")["w2"]["exit_code"] == 5
    assert h.record("w2")["over"] is True  # type: ignore[index]
    h.ok("worker", "start", "w2", "THE BRIEF", "--host", "k1")  # the id is free again
    h.log_until("w2", "ready")
    # a decision starts one there too
    h.move({"action": "start_worker", "id": "w3", "prompt": "THE BRIEF", "host": "k1"})
    assert h.record("w3") is not None
    h.log_until("w3", "ready")
    out = h.ok("down")
    assert "w2" in out or "w3" in out
    assert h.record("w2")["over"] and h.record("w3")["over"]  # type: ignore[index]
    assert not h.cluster.jobs
    code, _, _ = h.cli("wait", "w2", "--timeout", "5s")
    assert code != 124


def test_a_finished_pod_worker_is_over_with_its_code(home: Home) -> None:
    h = home
    _add(h)
    h.ok(
        "worker",
        "start",
        "w4",
        "THE BRIEF",
        "--host",
        "k1",
        "--command",
        "sh -c 'echo done; exit 7' # {{prompt_file}}",
    )
    code, _, _ = h.cli("wait", "w4", "--timeout", "30s")
    assert code == 7
    assert h.record("w4") == {**h.record("w4"), "over": True, "exit_code": 7}  # type: ignore[dict-item]
    code, out, _ = h.cli("log", "w4", "-f")
    assert code == 7 and "done" in out
    assert h.rows("-a")["w4"]["exit_code"] == 7
    h.ok("kill", "w4")  # its Job goes (as its TTL would take it): the code the home saw stays
    assert not h.cluster.jobs
    code, _, _ = h.cli("wait", "w4")
    assert code == 7 and h.rows("-a")["w4"]["exit_code"] == 7


def test_placement_weighs_a_capped_kubernetes_host_against_the_home(home: Home) -> None:
    h = home
    _add(h, "k1", "--cap", "1")
    h.cli.env["LOOOP_MAX_WORKERS"] = "1"
    h.ok("worker", "start", "p1", "THE BRIEF")  # a tie: the home first
    assert h.record("p1") is None and h.rows()["p1"].get("host") is None
    h.ok("worker", "start", "p2", "THE BRIEF")  # the home is full, k1 has room
    assert h.record("p2")["host"] == "k1"  # type: ignore[index]
    assert "every host is full" in h.fails("worker", "start", "p3", "THE BRIEF")
    assert "host k1 is full" in h.fails("worker", "start", "p3", "THE BRIEF", "--host", "k1")
    assert not (h.data / "hosts" / "workers" / "p3.json").exists()
    h.ok("down")
    assert not h.cluster.jobs


def test_a_failed_start_puts_the_record_back_and_a_refusal_writes_nothing(home: Home) -> None:
    h = home
    _add(h)
    # a Job of that id already in the namespace: the cluster refuses, the record is undone
    h.ok("worker", "start", "r1", "THE BRIEF", "--host", "k1")
    rec = h.data / "hosts" / "workers" / "r1.json"
    rec.unlink()
    said = h.fails("worker", "start", "r1", "THE BRIEF", "--host", "k1")
    assert "already has a Job" in said and not rec.exists()
    # an earlier worker's record comes back as it was
    earlier = {"v": 1, "id": "r1", "host": "k1", "over": True, "exit_code": 0}
    rec.write_text(json.dumps(earlier))
    h.fails("worker", "start", "r1", "THE BRIEF", "--host", "k1")
    assert json.loads(rec.read_text()) == earlier
    h.ok("worker", "kill", "r1")

    jobs = len(h.cluster.jobs)
    for args, says in [
        (("--repo", "/some/local/repo"), "not a URL a pod can clone"),
        (("--repo", "https://user:pw@example.com/x.git"), "credentials"),
        (("--verify", "true"), "--verify runs on this machine only"),
        (("--sandbox",), "the sandbox (srt) runs here or on an SSH host, not in a Kubernetes pod"),
        (("--resume",), "--resume covers workers on this machine only"),
    ]:
        assert says in h.fails("worker", "start", "b1", "THE BRIEF", "--host", "k1", *args)
        assert not (h.data / "hosts" / "workers" / "b1.json").exists()
    assert "no host nope" in h.fails("worker", "start", "b1", "THE BRIEF", "--host", "nope")
    assert len(h.cluster.jobs) == jobs

    # no way home: neither web.url nor a running `looop web`
    _config(h.data, h.tmp / "agent.sh", web_url=None)
    said = h.fails("worker", "start", "b2", "THE BRIEF", "--host", "k1")
    assert "web.url" in said and "looop web" in said
    assert not (h.data / "hosts" / "workers" / "b2.json").exists()
    assert len(h.cluster.jobs) == jobs


def test_a_repo_url_becomes_the_jobs_clone(home: Home) -> None:
    h = home
    _add(h)
    h.ok(
        "worker",
        "start",
        "g1",
        "THE BRIEF",
        "--host",
        "k1",
        "--repo",
        "https://git.example.com/team/app.git",
        "--branch",
        "main",
    )
    spec = h.cluster.jobs[("team-a", mf.job_name("g1"))]["spec"]["template"]["spec"]
    clone = spec["initContainers"][0]["command"]
    assert clone[-2:] == ["https://git.example.com/team/app.git", mf.REPO_DIR]
    assert clone[clone.index("--branch") + 1] == "main"
    assert spec["containers"][0]["workingDir"] == mf.REPO_DIR
    h.ok("kill", "g1")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("k1", "k8s://stand-in"), "names no namespace"),
        (("k1", "k8s://stand-in/Team_A"), "namespace"),
        (("k1", "k8s://stand in/team-a"), "context"),
        (("k1", "k8s://stand-in/team-a", "--image", "img with space"), "image"),
        (("k1", "k8s://stand-in/team-a", "--image", "img\nnext"), "image"),
        (("k1", "k8s://stand-in/team-a", "--image", ""), "image"),
        (("k1", "k8s://stand-in/team-a", "--cap", "-1"), "--cap"),
        (("k1", "k8s://stand-in/team-a", "--cap", "10001"), "--cap"),
        (("k1", "k8s://stand-in/team-a", "--cap", "99999999999999999999"), "--cap"),
        (("k1", "k8s://stand-in/team-a", "--deadline", "0"), "deadline 0s is out of range"),
        (("k1", "k8s://stand-in/team-a", "--deadline", "-5"), "deadline"),
        (("k1", "k8s://stand-in/team-a", "--deadline", "99999999999"), "deadline"),
        (("k1", "k8s://stand-in/team-a", "--ttl", "-1"), "ttl"),
        (("k1", "k8s://stand-in/team-a", "--cpu", "lots"), "not a Kubernetes quantity"),
        (("k1", "k8s://stand-in/team-a", "--secret-env", "Bad_Name"), "secret name"),
        (("k1", "k8s://stand-in/team-a", "--kubeconfig", "/no/such/file"), "no such file"),
        (("k1", "k8s://stand-in/team-a", "--ssh-config", "/etc/hosts"), "--ssh-config"),
        (("k1", "ssh://me@h", "--image", IMAGE), "--image is for a Kubernetes host"),
        (("Bad", "k8s://stand-in/team-a"), "bad host name"),
        (("local", "k8s://stand-in/team-a"), "bad host name"),
    ],
)
def test_host_add_refuses_each_bad_input_in_one_line(
    home: Home, args: tuple[str, ...], says: str
) -> None:
    h = home
    full = list(args)
    if full[1].startswith("k8s://") and "--image" not in full:
        full += ["--image", IMAGE]
    said = h.fails("host", "add", *full)
    assert says in said, said
    assert json.loads(h.ok("host", "ls", "--json")) == []


def test_without_an_image_or_the_client_nothing_is_registered(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = home
    assert "needs --image" in h.fails("host", "add", "k1", TARGET)
    _add(h, "k2")
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if `looop[k8s]` were missing
    said = h.fails("host", "add", "k1", TARGET, "--image", IMAGE)
    assert said.strip() == f"looop: {INSTALL_HINT}"
    assert [r["name"] for r in json.loads(h.ok("host", "ls", "--json"))] == ["k2"]
    assert INSTALL_HINT in h.fails("worker", "start", "x1", "THE BRIEF", "--host", "k2")
    assert not (h.data / "hosts" / "workers" / "x1.json").exists()
    assert INSTALL_HINT in h.fails("host", "check", "k2")


def test_host_rm_install_and_an_old_ssh_record(home: Home) -> None:
    h = home
    _add(h)
    assert "nothing to install" in h.fails("host", "install", "k1")
    h.ok("worker", "start", "m1", "THE BRIEF", "--host", "k1")
    assert "runs 1 worker(s) (m1)" in h.fails("host", "rm", "k1")
    h.ok("kill", "m1")
    h.ok("host", "rm", "k1")
    assert json.loads(h.ok("host", "ls", "--json")) == []
    # a record written before hosts had kinds still reads as an SSH host
    old = {"v": 1, "name": "s1", "host": "10.9.9.9", "user": "me", "port": None, "cap": 3}
    (h.data / "hosts" / "s1.json").write_text(json.dumps(old))
    rows = json.loads(h.ok("host", "ls", "--json"))
    assert rows == [
        {
            "cap": 3,
            "image": None,
            "kind": "ssh",
            "name": "s1",
            "url": "ssh://me@10.9.9.9",
            "workers": 0,
        }
    ]
    # a Kubernetes record with a bad value is an error naming the file, not a vanished host
    bad = {"v": 1, "kind": "k8s", "name": "k9", "target": TARGET, "image": "a b", "cap": 0}
    (h.data / "hosts" / "k9.json").write_text(json.dumps(bad))
    assert "is not a host record" in h.fails("host", "ls")


TEMPLATE = """\
imagePullSecrets: [{name: regcred}]
nodeSelector: {pool: agents}
tolerations: [{key: agents, operator: Exists, effect: NoSchedule}]
serviceAccountName: looop-worker
runtimeClassName: gvisor
containers:
  - name: worker
    resources: {requests: {memory: 1Gi}, limits: {cpu: "2", memory: 2Gi}}
    envFrom: [{secretRef: {name: more-keys}}]
"""


def test_a_pod_template_is_kept_with_the_host_and_shapes_each_job(home: Home) -> None:
    h = home
    (h.tmp / "pod.yaml").write_text(TEMPLATE)
    _add(h, "k1", "--cpu", "500m", "--secret-env", "agent-keys", "--pod-template", "pod.yaml")
    (h.tmp / "pod.yaml").unlink()  # kept in the host's record, not read again
    h.ok("worker", "start", "p1", "THE BRIEF", "--host", "k1")
    pod = h.cluster.jobs[("team-a", mf.job_name("p1"))]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert (pod["nodeSelector"], pod["runtimeClassName"]) == ({"pool": "agents"}, "gvisor")
    assert pod["serviceAccountName"] == "looop-worker" and pod["tolerations"][0]["key"] == "agents"
    [c] = pod["containers"]
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert c["resources"]["limits"] | {"ephemeral-storage": 0} == {
        "cpu": "2",
        "memory": "2Gi",
        "ephemeral-storage": 0,  # the home's disk bound
    }
    assert c["envFrom"] == [
        {"secretRef": {"name": "agent-keys"}},
        {"secretRef": {"name": "more-keys"}},
    ]
    assert c["command"][:3] == ["looop", "pod", "run"]
    h.ok("kill", "p1")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nodeSelecter: {pool: a}\n", "pod template: spec has no field `nodeSelecter`"),
        ("tolerations: [{key: a, efect: NoSchedule}]\n", "spec.tolerations[0] has no field"),
        ("containers: [{name: worker, resouces: {}}]\n", "spec.containers[0] has no field"),
        ("hostNetwork: true\n", "`hostNetwork` is refused"),
        ("containers: [{name: worker, command: [sh]}]\n", "containers[0].command is refused"),
        ("nodeSelector: [a\n", "--pod-template"),
        ("- a\n", "must hold a mapping"),
    ],
)
def test_a_bad_pod_template_is_refused_in_one_line(home: Home, text: str, says: str) -> None:
    h = home
    (h.tmp / "pod.yaml").write_text(text)
    said = h.fails("host", "add", "k1", TARGET, "--image", IMAGE, "--pod-template", "pod.yaml")
    assert says in said, said
    assert (
        "no such file"
        in h.fails(
            "host", "add", "k1", TARGET, "--image", IMAGE, "--pod-template", "nope.yaml"
        ).lower()
    )
    assert json.loads(h.ok("host", "ls", "--json")) == []


def test_a_private_repo_is_cloned_with_a_named_secret_looop_never_reads(home: Home) -> None:
    h = home
    _add(h, "k1", "--git-secret", "git-cred")
    url = "https://git.example.com/team/private.git"
    h.ok("worker", "start", "c1", "THE BRIEF", "--host", "k1", "--repo", url)
    spec = h.cluster.jobs[("team-a", mf.job_name("c1"))]["spec"]["template"]["spec"]
    [clone], [worker] = spec["initContainers"], spec["containers"]
    assert clone["command"][-2:] == [url, mf.REPO_DIR]  # no credential in the URL
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in clone["env"] if "valueFrom" in e}
    assert refs == {
        "GIT_USERNAME": {"name": "git-cred", "key": "username"},
        "GIT_PASSWORD": {"name": "git-cred", "key": "password"},
    }
    assert not any(e["name"].startswith("GIT_") for e in worker["env"])  # the clone's alone
    assert not any("secrets/git-cred" in r for r in h.cluster.requests)  # never read by looop
    # real git, given the clone step's environment, takes the Secret's keys as its credential
    secret = {"username": "bot", "password": "s3cret-token"}
    env = {"PATH": os.environ["PATH"], "HOME": str(h.tmp)}
    for e in clone["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        env[e["name"]] = secret[ref["key"]] if ref else e["value"]
    got = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=git.example.com\npath=team/private.git\n\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "username=bot\n" in got.stdout and "password=s3cret-token\n" in got.stdout, got
    bad = h.fails("host", "add", "k2", TARGET, "--image", IMAGE, "--git-secret", "Bad_Name")
    assert "secret name 'Bad_Name'" in bad
    h.ok("kill", "c1")


def test_ls_imports_the_client_only_when_it_asks_the_cluster(home: Home) -> None:
    """The client's import costs ~28 `python -c pass`: `ls` pays it for a live pod worker
    only, never for a Kubernetes host whose workers are over."""
    h = home
    _add(h)

    def client() -> bool:
        got = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "looop", "ls"],
            env=h.cli.child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert got.returncode == 0, got.stderr[-500:]
        names = [ln.rsplit("|", 1)[-1].strip() for ln in got.stderr.splitlines() if "|" in ln]
        return any(n.startswith("kubernetes.") for n in names)

    h.ok("worker", "start", "i1", "THE BRIEF", "--host", "k1")
    assert client()  # a live pod worker: the cluster is asked
    h.ok("kill", "i1")
    assert not client()
