"""`k8s://CONTEXT/NAMESPACE`: which cluster (a context of the user's own kubeconfig — looop
keeps no credentials) and which namespace a worker's Job goes to. Read strictly: anything
odd is one line naming what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

from looop.home.errors import LooopError

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


def _shown(text: str) -> str:
    """A hostile spelling made one short printable line for an error message."""
    out = "".join(c if c.isprintable() and c.isascii() else "?" for c in text)
    return out if len(out) <= 80 else out[:77] + "..."


def parse_target(url: str) -> KubeTarget:
    """`k8s://CONTEXT/NAMESPACE` (or `k8s:///NAMESPACE` for the current context)."""
    if not isinstance(url, str) or not url.startswith(SCHEME):
        raise LooopError(
            f"kubernetes target '{_shown(str(url))}' must read k8s://CONTEXT/NAMESPACE"
        )
    rest = url[len(SCHEME) :]
    context, slash, namespace = rest.rpartition("/")
    if not slash:
        raise LooopError(
            f"kubernetes target '{_shown(url)}' names no namespace: write k8s://CONTEXT/NAMESPACE"
        )
    if not is_dns_label(namespace, MAX_NAMESPACE):
        raise LooopError(
            f"kubernetes namespace '{_shown(namespace)}' is not a valid name: use 1-63 "
            "lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    # A context is the kubeconfig's own key (EKS names hold ':' and '/'); only what could
    # not be one, or could smuggle a query or fragment, is refused.
    if len(context) > MAX_CONTEXT or any(
        not (c.isascii() and c.isprintable()) or c.isspace() or c in "?#\\" for c in context
    ):
        raise LooopError(
            f"kubernetes context '{_shown(context)}' is not a usable kubeconfig context name: "
            "printable ASCII without spaces, '?', '#' or '\\', at most 253 characters"
        )
    return KubeTarget(context, namespace)
