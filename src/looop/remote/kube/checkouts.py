"""Where a pod's worker finds its repositories: one is cloned into /workspace/repo, where it
starts; several are each cloned into /workspace/checkouts/<name> side by side (name: the URL's
last path part without `.git`, made unique with -2, -3 …), and it starts in the folder holding
them, as a worker of several repositories does at home. Each clone is an init container of
its own (shallow; the branch, if named, cloned in each)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from looop.home.errors import LooopError

REPO_DIR = "/workspace/repo"
CHECKOUTS_DIR = "/workspace/checkouts"
MAX_REPOS = 8  # as a start at home or on an SSH host takes
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def folder_of(url: str) -> str:
    """A checkout's folder name from its URL (`repo` when the URL's end is no safe name)."""
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    tail = tail[:-4] if tail.endswith(".git") else tail
    return tail if _SAFE.fullmatch(tail) else "repo"


def folders(urls: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(folder, url) of each repository in the order given, every folder its own; each URL
    already checked (manifests' check_repo). Two to MAX_REPOS, each given once."""
    if not 2 <= len(urls) <= MAX_REPOS:
        raise LooopError(f"a pod takes 2 to {MAX_REPOS} repositories, not {len(urls)}")
    if len(set(urls)) != len(urls):
        raise LooopError("a repository given twice — give each repository once")
    out: list[tuple[str, str]] = []
    taken: set[str] = set()
    for url in urls:
        name, n = folder_of(url), 1
        while (name if n == 1 else f"{name}-{n}") in taken:
            n += 1
        name = name if n == 1 else f"{name}-{n}"
        taken.add(name)
        out.append((name, url))
    return tuple(out)


def clone_steps(
    checkouts: Sequence[tuple[str, str]], branch: str | None, container: dict[str, Any]
) -> list[dict[str, Any]]:
    """The init containers that clone each (folder, url) — one repository's folder "": into
    REPO_DIR — shallow, `branch` if named; `container`: their image, env, mounts and walls as
    the pod's other steps have them."""
    out: list[dict[str, Any]] = []
    for i, (name, url) in enumerate(checkouts, 1):
        clone = ["git", "clone", "--depth", "1"]
        if branch is not None:
            clone += ["--branch", branch]
        dest = f"{CHECKOUTS_DIR}/{name}" if name else REPO_DIR
        step = "clone" if not name else f"clone-{i}"
        out.append({"name": step, **container, "command": [*clone, "--", url, dest]})
    return out


def note(urls: Sequence[str]) -> str:
    """What a worker of several repositories in a pod is told first: where each is ("": one
    repository or none, whose place is its start folder)."""
    if len(urls) < 2:
        return ""
    lines = [f"**Your checkouts**: cloned side by side in {CHECKOUTS_DIR}, where you start:"]
    lines += [f"- `{name}/`: a clone of {url}" for name, url in folders(urls)]
    return "\n".join(lines) + "\n\n"


# git asks this helper (run by sh) for an https clone's credential: the Secret's keys, as the
# clone step's environment has them; never in a URL, an argv or looop's hands.
GIT_HELPER = (
    '!f() { test "$1" = get && '
    'printf "username=%s\\npassword=%s\\n" "$GIT_USERNAME" "$GIT_PASSWORD"; }; f'
)


def git_env(secret: str | None) -> list[dict[str, Any]]:
    """The clone step's credential: `username` and `password` of the Secret `secret` (a
    kubernetes.io/basic-auth one; a token as its password)."""
    if secret is None:
        return []
    keys = [("GIT_USERNAME", "username"), ("GIT_PASSWORD", "password")]
    env = [{"name": v, "valueFrom": {"secretKeyRef": {"name": secret, "key": k}}} for v, k in keys]
    config = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper"}
    config |= {"GIT_CONFIG_VALUE_0": GIT_HELPER, "GIT_TERMINAL_PROMPT": "0"}
    return env + [{"name": k, "value": v} for k, v in config.items()]
