"""The objects one Kubernetes worker is made of, as plain dicts: a Job (one pod, never retried
— the pulse owns retries), the ConfigMap that carries its brief and the Secret that carries
the way home (the web API's URL and token). Every input is checked first, with one line
naming what is wrong, so nothing odd reaches a manifest or the cluster.

Names: the Job is `looop-<slug>-<hash>` (a DNS-safe id, and its exact id's hash: W1 and w1
differ); labels carry that key and the home's, an annotation the id as typed. Built with no
client import: the tests validate these dicts against the Kubernetes OpenAPI schema."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from looop.home.knobs import KNOBS
from looop.home.sessionfiles import SessionError, check_id
from looop.remote.bounds import NAMES as BOUND_KNOBS
from looop.remote.bounds import checked as bounds_checked
from looop.remote.kube.checkouts import CHECKOUTS_DIR, REPO_DIR, clone_steps, folders, git_env
from looop.remote.kube.target import CONTAINER as CONTAINER
from looop.remote.kube.target import ManifestError as ManifestError
from looop.remote.kube.target import check_secret_name, check_template, patched
from looop.remote.repospec import MAX_URL, check_branch, shown
from looop.remote.repospec import check_url as check_repo
from looop.runners import RUNNERS

MANAGED_BY = "app.kubernetes.io/managed-by"
WORKER_LABEL = "looop.dev/worker"
HOME_LABEL = "looop.dev/home"
ID_ANNOTATION = "looop.dev/worker-id"
SIZE_ANNOTATION = "looop.dev/size"

DATA_DIR = "/looop"  # the pod's own data dir: sessions/<id>/output.log lives here
PROMPTS_DIR = "/looop/prompts"  # the brief, mounted from the ConfigMap
WORKSPACE = "/workspace"
PULL_POLICY = "IfNotPresent"
POD_UID = 1000  # the image's user (deploy/Dockerfile); numeric so runAsNonRoot can check it

MAX_BRIEF = 512 * 1024  # bytes; a ConfigMap holds at most 1 MiB, and a brief is prose
MAX_ARGV = 128 * 1024  # bytes over all arguments
MAX_ENV_VALUE = 32 * 1024
MAX_DEADLINE_S = 30 * 86400
MIN_DEADLINE_S = 60
MAX_TTL_S = 7 * 86400
# Only these of the home's environment go to the pod: the rest is the home's business (its
# PATH, HOME, tokens); an agent's credentials come from a Secret the user names.
# and the variable an "env" CLI gets looop's worker MCP server in (mcpwire.py)
PASSED_ENV = ("LOOOP_SESSION_ID", "LOOOP_RUNNER", *(p.mcp_env for p in RUNNERS if p.mcp_env))

QUANTITY = "a Kubernetes quantity (e.g. 500m, 2Gi)"
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def worker_key(sid: str) -> str:
    """The exact id as a short label value: ids differing only by case stay apart."""
    return hashlib.sha256(sid.encode()).hexdigest()[:12]


def home_key(home: str) -> str:
    """The home (its data dir) as a label value: two homes sharing a namespace never see
    each other's workers."""
    return hashlib.sha256(home.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def job_name(sid: str) -> str:
    """`looop-<slug>-<key>`: at most 6 + 40 + 1 + 12 = 59 characters, a DNS label."""
    slug = "".join(c if c.isalnum() else "-" for c in sid.lower()).strip("-")[:40].strip("-")
    return f"looop-{slug}-{worker_key(sid)}" if slug else f"looop-{worker_key(sid)}"


def _spelled(value: str, pattern: re.Pattern[str], what: str, is_not: str) -> str:
    """`value` when `pattern` spells it whole; else one line: `what 'value' is not is_not`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ManifestError(f"{what} '{shown(str(value))}' is not {is_not}")
    return value


def check_seconds(what: str, n: int, least: int, most: int) -> int:
    """A Job's deadline (at least a minute: a pod needs time to start) or ttl, in range."""
    if type(n) is not int or not least <= n <= most:
        raise ManifestError(f"{what} {n!r}s is out of range ({least}-{most})")
    return n


class WorkerShape:
    """Everything one worker's Job needs, checked on the way in (`ManifestError`)."""

    def __init__(
        self,
        sid: str,
        argv: Sequence[str],
        *,
        image: str,
        home: str,
        brief: str | None = None,
        env: Mapping[str, str] | None = None,
        size: tuple[int, int] = (80, 24),
        repo: str | None = None,
        branch: str | None = None,
        repos: Sequence[str] = (),
        cpu: str | None = None,
        memory: str | None = None,
        deadline_s: int = 4 * 3600,
        ttl_s: int = 3600,
        secret_env: str | None = None,
        with_contract: bool = True,
        bounds: Mapping[str, int] | None = None,
        template: Mapping[str, Any] | None = None,
        git_secret: str | None = None,
    ) -> None:
        self.sid = check_sid(sid)
        self.argv = _check_argv(argv)
        self.image = _spelled(image, _IMAGE, "image", "an image reference (registry/name:tag)")
        self.home = home_key(home)
        self.brief = _check_brief(brief) if brief is not None else None
        self.env = _check_env(env or {})
        self.size = _check_size(size)
        self.repo = check_repo(repo) if repo is not None else None
        # several (the first is `repo`): each cloned into its folder beside the others
        several = [check_repo(r) for r in repos] if len(repos) > 1 else []
        self.checkouts = folders(several) if several else ()  # a LooopError's one line
        if branch is not None and repo is None:
            raise ManifestError(f"worker {sid}: a branch needs a repo")
        self.branch = check_branch(branch) if branch is not None else None
        self.cpu = _spelled(cpu, _QUANTITY, "resource cpu", QUANTITY) if cpu is not None else None
        self.memory = (
            None if memory is None else _spelled(memory, _QUANTITY, "resource memory", QUANTITY)
        )
        self.deadline_s = check_seconds("deadline", deadline_s, MIN_DEADLINE_S, MAX_DEADLINE_S)
        self.ttl_s = check_seconds("ttl", ttl_s, 0, MAX_TTL_S)
        self.secret_env = check_secret_name(secret_env) if secret_env is not None else None
        self.git_secret = check_secret_name(git_secret) if git_secret is not None else None
        self.with_contract = with_contract
        self.bounds = bounds_checked(bounds or {})
        self.template = check_template(template) if template is not None else None

    @property
    def name(self) -> str:
        return job_name(self.sid)

    @property
    def workdir(self) -> str:  # where it starts: its checkout, the folder of several, or home
        return WORKSPACE if self.repo is None else CHECKOUTS_DIR if self.checkouts else REPO_DIR


def check_sid(sid: str) -> str:
    try:
        return check_id(sid)
    except SessionError:
        raise ManifestError(
            f"invalid session id '{shown(str(sid))}': use 1-64 letters, digits, '.', '_' or '-'"
        ) from None


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    cols, rows = size
    if not (10 <= cols <= 1000 and 2 <= rows <= 500):
        raise ManifestError(f"terminal size {cols}x{rows} is out of range (10-1000 x 2-500)")
    return cols, rows


def _check_argv(argv: Sequence[str]) -> list[str]:
    out = list(argv)
    if not out or not all(isinstance(a, str) for a in out):
        raise ManifestError("the worker command is empty")
    if not out[0]:
        raise ManifestError("the worker command names no program")
    if any("\x00" in a for a in out):
        raise ManifestError("the worker command holds a NUL byte")
    try:
        size = sum(len(a.encode("utf-8")) for a in out)
    except UnicodeEncodeError:
        raise ManifestError("the worker command is not valid text (a lone surrogate)") from None
    if size > MAX_ARGV:
        raise ManifestError(f"the worker command is {size} bytes, over {MAX_ARGV}")
    return out


def _check_brief(brief: str) -> str:
    try:
        data = brief.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestError("the brief is not valid text (a lone surrogate)") from None
    if len(data) > MAX_BRIEF:
        raise ManifestError(
            f"the brief is {len(data)} bytes, over the {MAX_BRIEF} a pod is sent: "
            "put the long parts in the repo and point at them"
        )
    if "\x00" in brief:
        raise ManifestError("the brief holds a NUL byte")
    return brief


def _check_env(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k in PASSED_ENV:
        v = env.get(k)
        if v is None:
            continue
        if not _ENV_NAME.fullmatch(k) or not isinstance(v, str):
            raise ManifestError(f"environment variable '{shown(k)}' is not usable")
        if "\x00" in v or len(v) > MAX_ENV_VALUE:
            raise ManifestError(f"environment variable {k} is too long or holds a NUL byte")
        out[k] = v
    return out


def labels(shape: WorkerShape) -> dict[str, str]:
    return {MANAGED_BY: "looop", WORKER_LABEL: worker_key(shape.sid), HOME_LABEL: shape.home}


def selector(sid: str, home: str) -> str:
    """The label selector for one worker's Job and pod of one home."""
    return f"{MANAGED_BY}=looop,{WORKER_LABEL}={worker_key(sid)},{HOME_LABEL}={home_key(home)}"


def contract_secret_name(shape: WorkerShape) -> str:
    return f"{shape.name}-home"


def brief_config_name(shape: WorkerShape) -> str:
    return f"{shape.name}-brief"


def _metadata(shape: WorkerShape, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": labels(shape),
        "annotations": {ID_ANNOTATION: shape.sid},
    }


def job(shape: WorkerShape) -> dict[str, Any]:
    """The worker's Job: one pod, restartPolicy Never, never retried (backoffLimit 0),
    ended by the cluster after `deadline_s` (the stuck backstop) and collected `ttl_s` after
    it finished. Its container's entrypoint is `looop pod run`, the PTY supervisor in the
    foreground; a repo is cloned into the workspace by an init container first. Built in
    steps over the checked shape: environment, storage, container, pod."""
    cols, rows = shape.size
    meta = _metadata(shape, shape.name)
    meta["annotations"][SIZE_ANNOTATION] = f"{cols}x{rows}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,  # the pulse owns retries
            "activeDeadlineSeconds": shape.deadline_s,
            "ttlSecondsAfterFinished": shape.ttl_s,
            "template": {"metadata": {"labels": labels(shape)}, "spec": _pod(shape)},
        },
    }


def _security() -> dict[str, Any]:
    """The worker and its clone step alike: no root, no privilege, no capability."""
    return {
        "runAsNonRoot": True,
        "runAsUser": POD_UID,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _job_env(shape: WorkerShape) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "LOOOP_DATA_DIR", "value": DATA_DIR},
        {"name": "LOOOP_POD", "value": "1"},  # `looop pod` runs only where this is set
        {"name": "TERM", "value": "xterm-256color"},
        {"name": "HOME", "value": f"{WORKSPACE}/.home"},
    ]
    env += [{"name": k, "value": v} for k, v in sorted(shape.env.items())]
    # the home's bounds: the pod's looop bounds its session by them (its process bound)
    for word, n in sorted(shape.bounds.items()):
        env.append({"name": KNOBS[BOUND_KNOBS[word]].env, "value": str(n)})
    if shape.repo is not None:
        env.append({"name": "LOOOP_WORKSPACE", "value": shape.workdir})
    if shape.checkouts:  # the order the pod records its clones in (podrun.record_checkouts)
        names = ",".join(name for name, _ in shape.checkouts)
        env.append({"name": "LOOOP_CHECKOUTS", "value": names})
    if shape.with_contract:
        secret = contract_secret_name(shape)
        for var, key in (("LOOOP_HOME_URL", "url"), ("LOOOP_HOME_TOKEN", "token")):
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def _storage(shape: WorkerShape) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The container's mounts and the pod's volumes: data and workspace, the brief if any."""
    places = (("data", DATA_DIR), ("workspace", WORKSPACE))
    mounts: list[dict[str, Any]] = [{"name": n, "mountPath": at} for n, at in places]
    volumes: list[dict[str, Any]] = [{"name": n, "emptyDir": {}} for n, _ in places]
    if shape.brief is not None:
        mounts.append({"name": "brief", "mountPath": PROMPTS_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "brief",
                "configMap": {
                    "name": brief_config_name(shape),
                    "items": [{"key": "brief.md", "path": f"{shape.sid}.md"}],
                },
            }
        )
    return mounts, volumes


def _container(shape: WorkerShape, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    size = "{}x{}".format(*shape.size)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": shape.image,
        "imagePullPolicy": PULL_POLICY,
        "command": ["looop", "pod", "run", "--id", shape.sid, "--size", size, "--", *shape.argv],
        "workingDir": shape.workdir,
        "env": _job_env(shape),
        "volumeMounts": mounts,
        "securityContext": _security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if shape.secret_env is not None:
        container["envFrom"] = [{"secretRef": {"name": shape.secret_env}}]
    resources: dict[str, dict[str, str]] = {}
    for key, value in (("cpu", shape.cpu), ("memory", shape.memory)):
        if value is not None:
            resources.setdefault("requests", {})[key] = value
    resources.update(_limits(shape))
    if resources:
        container["resources"] = resources
    return container


def _limits(shape: WorkerShape) -> dict[str, dict[str, str]]:
    """The container's limits: the host's cpu and memory, else memory from worker_max_memory;
    ephemeral-storage (its writable layer, logs and the pod's emptyDirs) from worker_max_disk.
    A limit with no request is requested whole (Kubernetes copies it)."""
    got = {"cpu": shape.cpu} if shape.cpu is not None else {}
    memory, disk = shape.bounds["memory"], shape.bounds["disk"]
    if shape.memory is not None or memory:
        got["memory"] = shape.memory if shape.memory is not None else str(memory)
    if disk:
        got["ephemeral-storage"] = str(disk)
    return {"limits": got} if got else {}  # empty: no resources said


def _pod(shape: WorkerShape) -> dict[str, Any]:
    mounts, volumes = _storage(shape)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,  # the worker never talks to the cluster
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 15,
        "securityContext": {"fsGroup": POD_UID},
        "containers": [_container(shape, mounts)],
        "volumes": volumes,
    }
    if shape.repo is not None:
        pod["initContainers"] = _clones(shape, shape.repo)
    return patched(pod, copy.deepcopy(shape.template)) if shape.template else pod


# What a pod template may not say: each would undo a guarantee (docs/KUBERNETES.md).
def _clones(shape: WorkerShape, repo: str) -> list[dict[str, Any]]:
    """The init containers that clone the repo (several: each side by side) first."""
    step = {
        "image": shape.image,
        "imagePullPolicy": PULL_POLICY,
        "env": [{"name": "HOME", "value": f"{WORKSPACE}/.home"}, *git_env(shape.git_secret)],
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
        "securityContext": _security(),
        "resources": _limits(shape),  # its memory and disk bounded as the worker's
    }
    return clone_steps(
        (("", repo),) if not shape.checkouts else shape.checkouts, shape.branch, step
    )


def _owned(shape: WorkerShape, name: str, job_uid: str | None) -> dict[str, Any]:
    meta = _metadata(shape, name)
    if job_uid is not None:
        # Collected with its Job: deleting the Job (or its TTL) takes these along.
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": shape.name, "uid": job_uid}
        meta["ownerReferences"] = [{**owner, "blockOwnerDeletion": True}]
    return meta


def brief_config(shape: WorkerShape, job_uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _owned(shape, brief_config_name(shape), job_uid),
        "data": {"brief.md": shape.brief or ""},
    }


def contract_secret(
    shape: WorkerShape, url: str, token: str, job_uid: str | None = None
) -> dict[str, Any]:
    """The way home: the web API's URL and its token (docs/KUBERNETES.md)."""
    if (
        not url.startswith(("http://", "https://"))
        or len(url) > MAX_URL
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise ManifestError(f"home URL '{shown(url)}' must be an http(s) URL the pod can reach")
    if not token or len(token) > 512 or not token.isascii() or not token.isprintable():
        raise ManifestError("the home token is empty or not printable ASCII")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned(shape, contract_secret_name(shape), job_uid),
        "type": "Opaque",
        "stringData": {"url": url, "token": token},
    }
