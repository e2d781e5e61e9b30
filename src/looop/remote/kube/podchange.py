"""The home's side of a Kubernetes worker's change: its checkouts are clones in its pod, so the
home asks the pod — an exec of `looop pod change OP --b64 REQ` in the worker's container,
JSON out (act/landthere.py answers it there with the same review code) — and adds its own
parts (workers/review.py: rounds, verify, proposal).

A pod whose Job ended has no checkouts any more (its emptyDir went with it): review, comments
and landing are refused in one line that says so and where its work is (wherever it pushed
its branch). A pod not running yet (its clones may still run) is refused as not yet."""

from __future__ import annotations

import base64
from typing import Any

from looop.core.context import Ctx
from looop.home import jsonio
from looop.remote.kube.checkouts import CHECKOUTS_DIR, REPO_DIR
from looop.remote.kube.cluster import KubeCluster, job_over, last_json
from looop.sessions.state import SessionError
from looop.workers.errors import ChangeError, Refused
from looop.workers.review import Review, away_review, far_diff

REVIEW_TIMEOUT_S = 60.0
OLDER = (
    "worker {wid}'s pod runs a looop older than this home's, which cannot read its change "
    "there — start it on an image with this looop"
)


def ended(wid: str) -> str:
    return (
        f"worker {wid}'s pod has ended and its checkouts went with it — its branch is "
        f"wherever it pushed it (fetch it from there); `looop log {wid}` shows what it did"
    )


def pod_running(b: KubeCluster, wid: str) -> None:
    """Nothing when the worker's pod runs; else why not, in one line (Refused)."""
    job = b.job_for(wid)
    if job is None or job_over(job):
        raise Refused(ended(wid))
    pod = b.pod_for(wid)
    if pod is None or pod.status is None or pod.status.phase != "Running":
        raise Refused(
            f"worker {wid}'s pod is not running yet (its clones may still be made) — try "
            "again once `looop ls` shows it running"
        )


def ask(b: KubeCluster, wid: str, op: str, req: dict[str, Any], timeout: float) -> dict[str, Any]:
    """`looop pod change OP` in the worker's container: its JSON answer, or one line."""
    pod_running(b, wid)
    b64 = base64.b64encode(jsonio.dumps({**req, "id": wid}).encode()).decode()
    try:
        out = b.exec_in(wid, ["looop", "pod", "change", op, "--b64", b64], timeout)
    except SessionError as e:
        if "No such command" not in str(e):
            raise
        raise ChangeError(OLDER.format(wid=wid)) from None
    got = last_json(out)
    if not isinstance(got, dict):
        raise ChangeError(
            f"worker {wid}'s pod answered {op} with nothing this home can read — is its "
            "image's looop older than this one? (`looop pod change` reads a change there)"
        )
    if isinstance(got.get("error"), str):
        raise ChangeError(got["error"])
    return got


def pod_review(ctx: Ctx, b: KubeCluster, wid: str) -> Review:
    """The change as the pod reads it, with this home's rounds, verify and proposal."""

    def read(req: dict[str, Any]) -> dict[str, Any]:
        return ask(b, wid, "review", req, REVIEW_TIMEOUT_S)

    return away_review(ctx, wid, read, f"worker {wid}'s pod")


def pod_diff(b: KubeCluster, wid: str) -> dict[str, Any]:
    return far_diff(ask(b, wid, "diff", {}, REVIEW_TIMEOUT_S), wid, f"worker {wid}'s pod")


def job_repos(b: KubeCluster, wid: str) -> dict[str, str]:
    """Each repository the worker's Job cloned, by its checkout's folder ("": the one): read
    from the Job this home made, never from what the pod says (the worker writes there)."""
    job = b.job_for(wid)
    spec = job.spec.template.spec if job is not None and job.spec is not None else None
    out: dict[str, str] = {}
    for step in (spec.init_containers or []) if spec is not None else []:
        argv = list(step.command or [])
        if len(argv) < 3 or argv[:2] != ["git", "clone"] or "--" not in argv:
            continue
        url, dest = [*argv[argv.index("--") + 1 :], "", ""][:2]
        if dest == REPO_DIR:
            out[""] = url
        elif dest.startswith(CHECKOUTS_DIR + "/"):
            out[dest.removeprefix(CHECKOUTS_DIR + "/")] = url
    return out
