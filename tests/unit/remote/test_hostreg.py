"""The host registry with two kinds (remote/hosts.py), placement over both, and the
generic remote layer (remote/engine.py) picking each worker's backend by its host's kind —
all from the files alone, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.remote import engine
from looop.remote import hosts as reg
from looop.remote.hosts import HostError, KubeHost
from looop.remote.ssh import backend as ssh_backend

TARGET = "k8s://arn:aws:eks:eu-west-1:1:cluster/prod/team-a"


def _kube(data: Path, name: str = "k1", cap: int = 0) -> KubeHost:
    h = reg.save(data, reg.kube_host(data, name, TARGET, image="reg.example/looop:1", cap=cap))
    assert isinstance(h, KubeHost)
    return h


def test_both_kinds_are_registered_and_read_back(ctx: Ctx) -> None:
    data = ctx.paths.data
    s = reg.add(data, "s1", "ssh://me@10.1.1.1:2200", 2)
    k = _kube(data, "k1", 3)
    assert json.loads((data / "hosts" / "s1.json").read_text())["kind"] == "ssh"
    raw = json.loads((data / "hosts" / "k1.json").read_text())
    assert raw["kind"] == "k8s" and raw["target"] == TARGET and raw["kubeconfig"] is None
    assert reg.lookup(data, "s1") == s and reg.lookup(data, "k1") == k
    assert [h.name for h, _ in reg.loads(data)] == ["k1", "s1"]
    assert (reg.host_kind(data, "k1"), reg.host_kind(data, "s1")) == ("k8s", "ssh")
    assert reg.host_kind(data, "nope") is None
    # what needs an SSH link refuses a Kubernetes host in one line
    with pytest.raises(HostError, match="k1 is a Kubernetes host") as got:
        reg.get(data, "k1")
    assert "\n" not in str(got.value)
    with pytest.raises(HostError, match="already registered"):
        _kube(data, "k1")


def test_a_record_from_before_kinds_reads_as_ssh(ctx: Ctx) -> None:
    data = ctx.paths.data
    (data / "hosts").mkdir()
    old = {"v": 1, "name": "o1", "host": "gpu1.lan", "user": None, "port": None, "cap": 0}
    (data / "hosts" / "o1.json").write_text(json.dumps(old))
    h = reg.get(data, "o1")
    assert h.kind == "ssh" and h.url == "ssh://gpu1.lan"


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "ftp"},
        {"image": "has space"},
        {"cap": -1},
        {"cap": True},
        {"deadline_s": 0},
        {"ttl_s": "1h"},
        {"target": "k8s://x"},
        {"kubeconfig": "relative/file"},
        {"cpu": "lots"},
    ],
)
def test_a_bad_kubernetes_record_is_an_error_naming_its_file(
    ctx: Ctx, change: dict[str, object]
) -> None:
    data = ctx.paths.data
    _kube(data)
    path = data / "hosts" / "k1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(HostError, match="is not a host record") as got:
        reg.lookup(data, "k1")
    assert str(path) in str(got.value)


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"image": "a\nb"}, "image"),
        ({"cap": 10_001}, "--cap"),
        ({"deadline_s": 59}, "deadline 59s"),
        ({"ttl_s": 7 * 86400 + 1}, "ttl"),
        ({"secret_env": "-x"}, "secret name"),
        ({"memory": "2 Gi"}, "quantity"),
        ({"kubeconfig": "/no/such/kubeconfig"}, "no such file"),
    ],
)
def test_kube_host_checks_every_value_and_writes_nothing(
    ctx: Ctx, kw: dict[str, object], says: str
) -> None:
    args: dict[str, object] = {"image": "img:1", **kw}
    with pytest.raises(LooopError, match=says) as got:
        reg.kube_host(ctx.paths.data, "k1", TARGET, **args)  # type: ignore[arg-type]
    assert "\n" not in str(got.value)
    assert reg.names(ctx.paths.data) == []


def test_placement_counts_kubernetes_hosts_with_their_caps(ctx: Ctx) -> None:
    data = ctx.paths.data
    _kube(data, "k1", cap=2)
    reg.add(data, "s1", "ssh://me@h", 1)
    assert reg.choose(data, local_live=1, max_workers=2) == "k1"  # room 2 beats 1 and 1
    reg.write_record(data, "a", "k1", over=False)
    reg.write_record(data, "b", "k1", over=True)  # over: no load
    assert {h.name: n for h, n in reg.loads(data)} == {"k1": 1, "s1": 0}
    assert reg.choose(data, local_live=1, max_workers=2) == "local"  # a tie: home first
    reg.write_record(data, "c", "k1", over=False)
    with pytest.raises(HostError, match="host k1 is full: 2 live workers"):
        reg.check_room(data, "k1")


def test_each_remote_worker_gets_the_backend_of_its_hosts_kind(ctx: Ctx) -> None:
    data = ctx.paths.data
    _kube(data, "k1")
    reg.add(data, "s1", "ssh://me@h", 0)
    reg.write_record(data, "on-k", "k1", over=False)
    reg.write_record(data, "on-s", "s1", over=False)
    kb, sb = engine.backend_for(ctx, "on-k"), engine.backend_for(ctx, "on-s")
    assert kb is not None and kb.kind == "kubernetes"
    assert sb is not None and sb.kind == "ssh"
    far = engine.remote_of(ctx, "on-k")
    assert far is not None and far.kind == "kubernetes"
    assert engine.remote_of(ctx, "here") is None
    # the SSH rows leave a Kubernetes host's workers to the Kubernetes rows
    assert list(ssh_backend.ssh_records(data)) == ["on-s"]
