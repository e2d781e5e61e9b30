"""What a worker away from home may be given as `--repo URL [--branch B]`: the URL rules and
the branch rule shared by a Kubernetes Job's clone (remote/kube/manifests.py) and an SSH
host's (remote/ssh/satellite.py). Pure: checked at home before anything crosses, and again
where the clone is made."""

from __future__ import annotations

import re

from looop.home.errors import LooopError

MAX_URL = 2048
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-][^:]*")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")
_BAD_REF = re.compile(r"\.\.|@\{|//|/\.|\.lock(/|$)|[\x00-\x20\x7f~^:?*\[\\]")
POD = "a pod"
ON_THIS_MACHINE = "a local path is on this machine only"


class RepoError(LooopError):
    """A repo URL or branch name that must not reach git (one line)."""


def shown(text: str) -> str:
    """Untrusted text made safe for a one-line message: printable ASCII, at most 80."""
    out = "".join(c if c.isprintable() and c.isascii() else "?" for c in text)
    return out if len(out) <= 80 else out[:77] + "..."


def check_url(url: str, cloner: str = POD, paths: str = ON_THIS_MACHINE) -> str:
    """A repo `cloner` can clone over the network: https/http/ssh/git URLs or scp-like
    `user@host:path`. Refused: local paths and file:// (`paths` says what to do instead),
    git's transport helpers (`ext::` runs commands), a leading '-' (an option), credentials
    in the URL, spaces and control characters."""
    if not isinstance(url, str) or not url:
        raise RepoError(f"the repo URL is empty: give the URL {cloner} clones from")
    if len(url) > MAX_URL:
        raise RepoError(f"the repo URL is over {MAX_URL} characters")
    if any(not c.isprintable() or c.isspace() or not c.isascii() for c in url):
        raise RepoError(f"repo URL '{shown(url)}' holds spaces or control characters")
    if url.startswith("-"):
        raise RepoError(f"repo URL '{shown(url)}' starts with '-': it would read as an option")
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme not in ("https", "http", "ssh", "git"):
            raise RepoError(
                f"repo URL scheme '{shown(scheme)}' is not one {cloner} can clone from: "
                "use https://, ssh:// or git@host:path"
            )
        authority, _, path = rest.partition("/")
        user, at, hostport = authority.rpartition("@")
        if at and (scheme in ("https", "http") or ":" in user):
            kept = (
                "in the image or a Secret" if cloner == POD else "helper or an ssh key on the host"
            )
            raise RepoError(
                f"repo URL '{shown(url)}' carries credentials: keep them out of the URL "
                f"(a git credential {kept})"
            )
        if not _HOST.fullmatch(hostport) or not path:
            raise RepoError(f"repo URL '{shown(url)}' names no host and path")
        return url
    if "::" in url:
        raise RepoError(
            f"repo URL '{shown(url)}' names a git transport helper: use https:// or ssh://"
        )
    if _SCP_LIKE.fullmatch(url):
        return url
    raise RepoError(
        f"repo '{shown(url)}' is not a URL {cloner} can clone ({paths}): use https://, "
        "ssh:// or git@host:path"
    )


def ref_spelled(branch: str) -> str | None:
    """Why `branch` spells a ref rather than a branch's name, or None: `refs/heads/x` would make
    refs/heads/refs/heads/x, and git reads `heads/x`, `tags/x`, `remotes/o/x`, `HEAD` or
    `FETCH_HEAD` as another ref before it reads the branch of that name."""
    first = branch.split("/", 1)[0]
    if first in ("refs", "heads", "tags", "remotes") or first == "HEAD" or first.endswith("_HEAD"):
        return (
            f"branch '{shown(branch)}' spells a git ref, not a branch's name — give the name "
            "alone, without refs/, heads/, tags/, remotes/ or HEAD"
        )
    return None


def check_branch(branch: str) -> str:
    """A branch name git accepts (the check-ref-format rules that matter), no option and no
    ref's spelling (ref_spelled)."""
    said = ref_spelled(branch) if isinstance(branch, str) else None
    if said is not None:
        raise RepoError(said)
    if (
        not isinstance(branch, str)
        or not branch
        or len(branch) > 255
        or branch.startswith(("-", "/", "."))
        or branch.endswith(("/", ".", ".lock"))
        or branch == "@"
        or _BAD_REF.search(branch)
        or not branch.isascii()
    ):
        raise RepoError(f"branch '{shown(str(branch))}' is not a usable git branch name")
    return branch


def is_host_path(repo: str) -> bool:
    """A repo named as a folder on the machine that makes the checkout (absolute or `~/…`),
    not a URL to clone."""
    return repo.startswith("/") or repo == "~" or repo.startswith("~/")
