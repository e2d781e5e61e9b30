"""Every manifest the Kubernetes backend makes, validated offline against the Kubernetes
OpenAPI schema (kubernetes-validate, strict: an unknown field fails), over several worker
shapes and schema versions; and the API server's own name rules, which the schema does not
carry. Bad inputs are refused before any manifest is built."""

from __future__ import annotations

import re
from typing import Any

import pytest

kv = pytest.importorskip("kubernetes_validate")

from looop.home.errors import LooopError  # noqa: E402
from looop.remote.kube import manifests as m  # noqa: E402
from looop.remote.kube.target import KubeTarget, parse_target  # noqa: E402

VERSIONS = ("1.27", "1.30", "1.33", "1.37")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

SHAPES: dict[str, dict[str, Any]] = {
    "bare": {"sid": "w1", "argv": ["bash", "-c", "echo hi"]},
    "brief-only": {"sid": "Fix.Bug_7", "argv": ["claude", "/looop/prompts/x.md"], "brief": "do"},
    "repo": {
        "sid": "w-repo",
        "argv": ["codex", "exec", "go"],
        "brief": "# brief\n\nünïcode ✓\n",
        "repo": "https://github.com/example/app.git",
        "branch": "feature/x-1",
        "cpu": "500m",
        "memory": "2Gi",
        "secret_env": "agent-keys",
        "git_secret": "git-cred",
        "env": {"LOOOP_SESSION_ID": "w-repo", "LOOOP_RUNNER": "codex", "SECRET": "no"},
    },
    "scp-repo, no contract": {
        "sid": "-odd-",
        "argv": ["x"],
        "repo": "git@github.com:example/app.git",
        "with_contract": False,
        "deadline_s": 60,
        "ttl_s": 0,
        "size": (200, 60),
    },
    "longest id": {"sid": "A" * 64, "argv": ["x"], "brief": "x" * m.MAX_BRIEF},
    "several repos": {
        "sid": "w-two",
        "argv": ["x"],
        "repo": "https://github.com/example/app.git",
        "repos": ("https://github.com/example/app.git", "git@gitlab.example:team/app"),
        "branch": "main",
    },
    "bounded, with a clone": {
        "sid": "w-bounded",
        "argv": ["x"],
        "repo": "https://github.com/example/app.git",
        "bounds": {"pids": 512, "memory": 4 << 30, "disk": 2 << 30},
    },
    "pod template": {
        "sid": "w-tpl",
        "argv": ["x"],
        "cpu": "500m",
        "secret_env": "agent-keys",
        "template": {
            "imagePullSecrets": [{"name": "regcred"}],
            "nodeSelector": {"pool": "agents"},
            "tolerations": [{"key": "agents", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceAccountName": "looop-worker",
            "runtimeClassName": "gvisor",
            "containers": [
                {
                    "name": "worker",
                    "resources": {"requests": {"memory": "1Gi"}, "limits": {"cpu": "2"}},
                    "envFrom": [{"secretRef": {"name": "more-keys"}}],
                    "env": [{"name": "TERM", "value": "dumb"}, {"name": "EXTRA", "value": "1"}],
                }
            ],
            "volumes": [{"name": "cache", "emptyDir": {}}],
        },
    },
}


def _shape(spec: dict[str, Any]) -> m.WorkerShape:
    spec = dict(spec)
    sid, argv = spec.pop("sid"), spec.pop("argv")
    return m.WorkerShape(sid, argv, image="ghcr.io/example/looop:0.9", home="/home/u/d", **spec)


def _objects(shape: m.WorkerShape) -> list[dict[str, Any]]:
    out = [m.job(shape), m.brief_config(shape, "0f0e-uid")]
    if shape.with_contract:
        out.append(m.contract_secret(shape, "https://home.example:8443", "t0ken-abc"))
    return out


def _server_rules(obj: dict[str, Any]) -> None:
    """What the API server checks beyond the schema: names and label values."""
    meta = obj["metadata"]
    limit = 63 if obj["kind"] == "Job" else 253
    assert len(meta["name"]) <= limit and DNS_LABEL.fullmatch(meta["name"]), meta["name"]
    for key, value in meta["labels"].items():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), (key, value)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_manifest_validates_against_the_schema(name: str, version: str) -> None:
    for obj in _objects(_shape(SHAPES[name])):
        kv.validate(obj, version, strict=True)
        _server_rules(obj)


def test_the_job_is_what_the_pulse_expects() -> None:
    s = _shape(SHAPES["repo"])
    job = m.job(s)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 4 * 3600
    assert spec["ttlSecondsAfterFinished"] == 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (worker,) = pod["containers"]
    assert worker["command"][:3] == ["looop", "pod", "run"]
    assert worker["command"][-3:] == ["codex", "exec", "go"]
    names = {e["name"]: e for e in worker["env"]}
    # only the allow-listed home variables cross: never the home's own secrets
    assert "SECRET" not in names and names["LOOOP_RUNNER"]["value"] == "codex"
    assert names["LOOOP_HOME_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    (clone,) = pod["initContainers"]
    assert clone["command"] == [
        "git",
        "clone",
        "--depth",
        "1",
        "--branch",
        "feature/x-1",
        "--",
        "https://github.com/example/app.git",
        m.REPO_DIR,
    ]
    assert worker["resources"]["limits"] == {"cpu": "500m", "memory": "2Gi"}
    # the pod's labels select it as the Job's do, and the id is kept exactly
    assert spec["template"]["metadata"]["labels"] == job["metadata"]["labels"]
    assert job["metadata"]["annotations"][m.ID_ANNOTATION] == "w-repo"


def test_ids_differing_by_case_get_different_jobs() -> None:
    assert m.job_name("Worker") != m.job_name("worker")
    assert m.selector("Worker", "/h") != m.selector("worker", "/h")
    assert m.selector("w", "/home/a") != m.selector("w", "/home/b")


def test_owned_objects_point_at_their_job() -> None:
    s = _shape(SHAPES["bare"])
    ref = m.brief_config(s, "uid-9")["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Job", s.name, "uid-9")


BAD: list[tuple[dict[str, Any], str]] = [
    ({"sid": "../etc"}, "invalid session id"),
    ({"sid": "a\nb"}, "invalid session id"),
    ({"sid": ".."}, "invalid session id"),
    ({"sid": "x" * 65}, "invalid session id"),
    ({"sid": "w;rm -rf /"}, "invalid session id"),
    ({"brief": "x" * (m.MAX_BRIEF + 1)}, "over the"),
    ({"brief": "ok\ud800"}, "lone surrogate"),
    ({"brief": "a\x00b"}, "NUL"),
    ({"argv": []}, "empty"),
    ({"argv": ["a\x00"]}, "NUL"),
    ({"argv": ["x" * (m.MAX_ARGV + 1)]}, "bytes, over"),
    ({"repo": "/home/u/src/app"}, "local path"),
    ({"repo": "file:///etc"}, "scheme 'file'"),
    ({"repo": "ext::sh -c touch% /tmp/pwned"}, "spaces"),
    ({"repo": "ext::sh"}, "transport helper"),
    ({"repo": "--upload-pack=touch /tmp/x"}, "spaces"),
    ({"repo": "-uhost:x"}, "starts with '-'"),
    ({"repo": "https://user:pw@github.com/a/b"}, "credentials"),
    ({"repo": "https://github.com/a/b\n"}, "control"),
    ({"repo": "https://"}, "no host"),
    ({"repo": "https://x/" + "a" * 3000}, "over 2048"),
    ({"repo": "https://ex.com/a", "branch": "--orphan"}, "branch"),
    ({"repo": "https://ex.com/a", "branch": "a..b"}, "branch"),
    ({"repo": "https://ex.com/a", "branch": "a b"}, "branch"),
    ({"repo": "https://ex.com/a", "branch": "x.lock"}, "branch"),
    ({"branch": "main"}, "needs a repo"),
    ({"repo": "https://ex.com/a", "repos": ("https://ex.com/a", "/src/lib")}, "local path"),
    ({"repo": "https://ex.com/a", "repos": ("https://ex.com/a", "https://u:p@ex.com/b")}, "cred"),
    ({"repo": "https://ex.com/a", "repos": ("https://ex.com/a",) * 2}, "given twice"),
    ({"repo": "https://e.com/0", "repos": tuple(f"https://e.com/{i}" for i in range(9))}, "2 to 8"),
    ({"cpu": "lots"}, "quantity"),
    ({"memory": "1Gi; rm"}, "quantity"),
    ({"deadline_s": 5}, "deadline"),
    ({"deadline_s": 10**9}, "deadline"),
    ({"ttl_s": -1}, "ttl"),
    ({"secret_env": "Bad_Name"}, "secret name"),
    ({"size": (5, 5)}, "terminal size"),
    ({"image": "-x"}, "image"),
    ({"image": "a b"}, "image"),
    ({"bounds": {"memory": -1}}, "memory bound"),
    ({"bounds": {"pids": True}}, "pids bound"),
    ({"bounds": {"disk": 1.5}}, "disk bound"),
    ({"bounds": {"disk": "2Gi"}}, "disk bound"),
    ({"bounds": {"memory": 1 << 41}}, "memory bound"),
]


@pytest.mark.parametrize(("change", "said"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_inputs_are_refused_with_one_line(change: dict[str, Any], said: str) -> None:
    spec: dict[str, Any] = {"sid": "w1", "argv": ["x"], "image": "img:1", "home": "/h"}
    spec.update(change)
    sid, argv = spec.pop("sid"), spec.pop("argv")
    with pytest.raises(LooopError) as got:
        m.WorkerShape(sid, argv, **spec)
    msg = str(got.value)
    assert said in msg and "\n" not in msg and len(msg) < 300


def test_the_home_url_and_token_are_checked() -> None:
    s = _shape(SHAPES["bare"])
    bad = (("ftp://x", "t"), ("https://x y", "t"), ("https://x", ""), ("http://x", "t\n"))
    for url, token in bad:
        with pytest.raises(m.ManifestError):
            m.contract_secret(s, url, token)


def test_targets_parse_strictly() -> None:
    assert parse_target("k8s://prod/looop") == KubeTarget("prod", "looop")
    eks = parse_target("k8s://arn:aws:eks:eu-west-1:1:cluster/c1/team-a")
    assert (eks.context, eks.namespace) == ("arn:aws:eks:eu-west-1:1:cluster/c1", "team-a")
    assert parse_target("k8s:///default") == KubeTarget("", "default")
    assert parse_target("k8s://prod/looop").url() == "k8s://prod/looop"
    for bad, said in (
        ("ssh://x/y", "must read"),
        ("k8s://prod", "names no namespace"),
        ("k8s://prod/", "not a valid name"),
        ("k8s://prod/Team", "not a valid name"),
        ("k8s://prod/-x", "not a valid name"),
        ("k8s://prod/" + "a" * 64, "not a valid name"),
        ("k8s://pr od/ns", "context"),
        ("k8s://pr\x1bod/ns", "context"),
        ("k8s://prod?x=1/ns", "context"),
        ("k8s://" + "c" * 300 + "/ns", "context"),
    ):
        with pytest.raises(LooopError) as got:
            parse_target(bad)
        msg = str(got.value)
        assert said in msg and "\n" not in msg and "\x1b" not in msg


def test_the_image_recipe_matches_what_the_job_expects() -> None:
    """deploy/Dockerfile: the uid the Job's runAsUser names, looop on PATH, git for the clone."""
    from pathlib import Path

    recipe = (Path(__file__).parents[4] / "deploy" / "Dockerfile").read_text()
    assert f"USER {m.POD_UID}" in recipe and f"--uid {m.POD_UID}" in recipe
    assert "/usr/local/bin/looop" in recipe and " git " in recipe


def test_the_home_bounds_become_the_pods_limits_and_its_sessions_process_bound() -> None:
    """worker_max_memory and worker_max_disk are the worker container's memory and
    ephemeral-storage limits (its clone step's too: never more than the worker may hold);
    worker_max_pids, which no pod field holds, reaches the pod's looop by its env."""
    bounds = {"pids": 64, "memory": 512 << 20, "disk": 1 << 30}
    shape = _shape({"sid": "w1", "argv": ["x"], "repo": "https://ex.com/a", "bounds": bounds})
    pod = m.job(shape)["spec"]["template"]["spec"]
    worker, clone = pod["containers"][0], pod["initContainers"][0]
    limits = {"memory": str(512 << 20), "ephemeral-storage": str(1 << 30)}
    assert worker["resources"] == {"limits": limits}
    assert clone["resources"] == {"limits": limits}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["LOOOP_WORKER_MAX_PIDS"] == "64"
    assert env["LOOOP_WORKER_MAX_MEMORY"] == str(512 << 20)


def test_a_hosts_own_memory_wins_and_a_bound_of_0_is_none() -> None:
    bounds = {"pids": 0, "memory": 512 << 20, "disk": 0}
    shape = _shape({"sid": "w1", "argv": ["x"], "memory": "1Gi", "bounds": bounds})
    worker = m.job(shape)["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"] == {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    none = _shape({"sid": "w1", "argv": ["x"], "bounds": {"pids": 0, "memory": 0, "disk": 0}})
    assert "resources" not in m.job(none)["spec"]["template"]["spec"]["containers"][0]


def test_several_repos_are_each_cloned_beside_the_others_where_the_worker_starts() -> None:
    """Each URL its own shallow clone (the branch in each) into /workspace/checkouts/<name>,
    names made unique; the worker starts in that folder, its LOOOP_WORKSPACE."""
    urls = (
        "https://github.com/example/app.git",
        "git@gitlab.example:team/app",  # the same last name: made unique
        "ssh://git@forge.example/x/lib.git",
    )
    shape = _shape({"sid": "w3", "argv": ["x"], "repo": urls[0], "repos": urls, "branch": "b"})
    pod = m.job(shape)["spec"]["template"]["spec"]
    clones = pod["initContainers"]
    assert [c["name"] for c in clones] == ["clone-1", "clone-2", "clone-3"]
    dests = ["/workspace/checkouts/app", "/workspace/checkouts/app-2", "/workspace/checkouts/lib"]
    for c, url, dest in zip(clones, urls, dests, strict=True):
        assert c["command"] == ["git", "clone", "--depth", "1", "--branch", "b", "--", url, dest]
        assert c["securityContext"] == pod["containers"][0]["securityContext"]
    (worker,) = pod["containers"]
    assert worker["workingDir"] == "/workspace/checkouts"
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["LOOOP_WORKSPACE"] == "/workspace/checkouts"
    one = m.job(_shape(SHAPES["repo"]))["spec"]["template"]["spec"]
    assert one["containers"][0]["workingDir"] == m.REPO_DIR  # one repository: as before
    assert [c["name"] for c in one["initContainers"]] == ["clone"]


def test_a_pod_template_merges_into_the_pod_by_name_and_keeps_looops_own() -> None:
    pod = m.job(_shape(SHAPES["pod template"]))["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert (pod["nodeSelector"], pod["serviceAccountName"]) == ({"pool": "agents"}, "looop-worker")
    assert pod["runtimeClassName"] == "gvisor" and pod["tolerations"][0]["key"] == "agents"
    assert pod["automountServiceAccountToken"] is False  # a service account, still no token
    [c] = pod["containers"]
    assert c["command"][:3] == ["looop", "pod", "run"] and c["securityContext"]["runAsNonRoot"]
    assert c["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2"},
    }
    assert c["envFrom"] == [
        {"secretRef": {"name": "agent-keys"}},
        {"secretRef": {"name": "more-keys"}},
    ]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert (env["TERM"], env["EXTRA"], env["LOOOP_POD"]) == ("dumb", "1", "1")
    assert [v["name"] for v in pod["volumes"]] == ["data", "workspace", "cache"]


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ({"hostNetwork": True}, "`hostNetwork` is refused"),
        ({"hostPID": True}, "`hostPID` is refused"),
        ({"securityContext": {"runAsUser": 0}}, "`securityContext` is refused"),
        ({"automountServiceAccountToken": True}, "`automountServiceAccountToken` is refused"),
        ({"initContainers": [{"name": "x"}]}, "`initContainers` is refused"),
        ({"containers": [{"name": "worker", "command": ["sh"]}]}, "containers[0].command is"),
        (
            {"containers": [{"name": "worker", "securityContext": {"privileged": True}}]},
            "containers[0].securityContext is refused",
        ),
        ({"containers": [{"name": "side", "image": "x"}]}, "must be named `worker`"),
        ({"containers": [{"name": "worker", "env": [{"name": "LOOOP_POD"}]}]}, "LOOOP_POD"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPath volume is refused"),
        (["nodeSelector"], "must hold a mapping"),
    ],
)
def test_a_pod_template_that_would_undo_a_guarantee_is_refused(template: Any, said: str) -> None:
    with pytest.raises(m.ManifestError, match=re.escape(said)):
        _shape({**SHAPES["bare"], "template": template})
