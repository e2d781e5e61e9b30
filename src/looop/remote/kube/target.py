"""Where a Kubernetes host's workers go and what their pods may say. `k8s://CONTEXT/NAMESPACE`:
which cluster (a context of the user's own kubeconfig — looop keeps no credentials) and which
namespace a worker's Job goes to. A host's --pod-template: checked once at `host add` (no
field looop's guarantees rest on, every field name known to the client's models) and merged
onto each worker's pod spec. Read strictly: anything odd is one line naming what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from looop.home.errors import LooopError
from looop.remote.repospec import shown

SCHEME = "k8s://"
MAX_CONTEXT = 253
MAX_NAMESPACE = 63
_DNS_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True, repr=False)
class KubeTarget:
    """A parsed target: `context` "" means the kubeconfig's current context."""

    context: str
    namespace: str

    def __repr__(self) -> str:
        return f"KubeTarget({self.url()!r})"

    def url(self) -> str:
        return f"{SCHEME}{self.context}/{self.namespace}"


def is_dns_label(name: str, limit: int = 63) -> bool:
    """RFC 1123 label, as Kubernetes checks namespaces and most names: lowercase
    alphanumerics and '-', starting and ending alphanumeric."""
    return (
        0 < len(name) <= limit
        and _DNS_LABEL.issuperset(name)
        and name[0] != "-"
        and name[-1] != "-"
    )


def parse_target(url: str) -> KubeTarget:
    """`k8s://CONTEXT/NAMESPACE` (or `k8s:///NAMESPACE` for the current context)."""
    if not isinstance(url, str) or not url.startswith(SCHEME):
        raise LooopError(f"kubernetes target '{shown(str(url))}' must read k8s://CONTEXT/NAMESPACE")
    rest = url[len(SCHEME) :]
    context, slash, namespace = rest.rpartition("/")
    if not slash:
        raise LooopError(
            f"kubernetes target '{shown(url)}' names no namespace: write k8s://CONTEXT/NAMESPACE"
        )
    if not is_dns_label(namespace, MAX_NAMESPACE):
        raise LooopError(
            f"kubernetes namespace '{shown(namespace)}' is not a valid name: use 1-63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    # A context is the kubeconfig's own key (EKS names hold ':' and '/'); only what could
    # not be one, or could smuggle a query or fragment, is refused.
    if len(context) > MAX_CONTEXT or any(
        not (c.isascii() and c.isprintable()) or c.isspace() or c in "?#\\" for c in context
    ):
        raise LooopError(
            f"kubernetes context '{shown(context)}' is not a usable kubeconfig context name: "
            "printable ASCII without spaces, '?', '#' or '\\', at most 253 characters"
        )
    return KubeTarget(context, namespace)


# -- a host's pod template

CONTAINER = "worker"


class ManifestError(LooopError):
    """An input that must not reach a manifest (one line)."""


_POD_REFUSED = {
    "hostNetwork": "a worker stays off the node's network",
    "hostPID": "a worker sees only its own processes",
    "hostIPC": "a worker shares no memory with the node",
    "hostUsers": "a worker's users are not the node's",
    "securityContext": "a worker runs as looop's non-root user",
    "automountServiceAccountToken": "a worker never talks to the cluster",
    "restartPolicy": "the pulse owns retries",
    "initContainers": "the clones are looop's",
    "ephemeralContainers": "the worker is the pod's only container",
}
_CONTAINER_REFUSED = {
    "command": "the container runs `looop pod run`",
    "args": "the container runs `looop pod run`",
    "image": "--image names it",
    "workingDir": "a worker starts in its checkout",
    "securityContext": "a worker runs unprivileged, as looop's non-root user",
}


def check_template(patch: Any, models: Any = None) -> dict[str, Any]:
    """A `--pod-template`: a patch of the pod spec that keeps looop's guarantees; with
    `models` (the client's, at `host add`) every field name is checked too."""
    if not isinstance(patch, dict):
        raise ManifestError("pod template: the file must hold a mapping of pod spec fields")
    for key, why in _POD_REFUSED.items():
        if key in patch:
            raise ManifestError(f"pod template: `{key}` is refused ({why}): remove it")
    for i, c in enumerate(patch.get("containers") or ()):
        if not isinstance(c, dict) or c.get("name") != CONTAINER:
            raise ManifestError(
                f"pod template: containers[{i}] must be named `{CONTAINER}` (no other container)"
            )
        for key, why in _CONTAINER_REFUSED.items():
            if key in c:
                raise ManifestError(f"pod template: containers[{i}].{key} is refused ({why})")
        for e in c.get("env") or ():
            if isinstance(e, dict) and str(e.get("name", "")).startswith("LOOOP_"):
                raise ManifestError(f"pod template: env {shown(e['name'])} is looop's own")
    for v in patch.get("volumes") or ():
        if isinstance(v, dict) and "hostPath" in v:
            raise ManifestError("pod template: a hostPath volume is refused (the node's files)")
    if models is not None:
        _known(patch, "V1PodSpec", "spec", models)
    return patch


def _known(value: Any, kind: str, at: str, models: Any) -> None:
    """Each field of `value` one the client's model `kind` has (its camelCase name)."""
    if kind.lower().startswith("list[") and isinstance(value, list):
        for i, v in enumerate(value):
            _known(v, kind[5:-1], f"{at}[{i}]", models)
        return
    cls = getattr(models, kind, None)
    if cls is None:
        return  # a plain value: the API checks it
    if not isinstance(value, dict):
        raise ManifestError(f"pod template: {at} must be a mapping")
    fields = {wire: attr for attr, wire in cls.attribute_map.items()}
    for key, v in value.items():
        if key not in fields:
            raise ManifestError(f"pod template: {at} has no field `{shown(str(key))}`")
        _known(v, cls.openapi_types[fields[key]], f"{at}.{key}", models)


def patched(base: Any, patch: Any) -> Any:
    """A strategic merge, kept small: mappings merge; in a list, an item with the `name` of
    one there merges into it, any other is appended; anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: patched(base[k], v) if k in base else v for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list):
        out = list(base)
        for item in patch:
            name = item.get("name") if isinstance(item, dict) else None
            at = [
                i
                for i, b in enumerate(out)
                if name and isinstance(b, dict) and b.get("name") == name
            ]
            if at:
                out[at[0]] = patched(out[at[0]], item)
            else:
                out.append(item)
        return out
    return patch


def check_secret_name(name: str) -> str:
    """A DNS subdomain, as Kubernetes names a Secret."""
    labels = name.split(".") if isinstance(name, str) and len(name) <= 253 else [""]
    if not all(is_dns_label(p) for p in labels):
        raise ManifestError(f"secret name '{shown(str(name))}' is not a Kubernetes name")
    return name
