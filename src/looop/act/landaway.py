"""A worker's change wherever its checkouts are — here, on an SSH host (act/landfar.py), in a
Kubernetes pod (act/landpod.py) — read, commented on, sent back and landed the one way, so
every face (`looop review`, `looop land`, the web's review panel, `watch`) asks this and
never where the worker runs."""

from __future__ import annotations

from dataclasses import dataclass

from looop.act.landfar import far_comments, far_land, far_review, far_send, ssh_host
from looop.act.landing import Approved, Landed, land
from looop.act.landpod import pod_comments, pod_land, pod_of, pod_send
from looop.core.context import Ctx
from looop.home.config import Knobs
from looop.remote.kube.hosted import HostedKube
from looop.remote.kube.podchange import pod_review
from looop.workers import reviewsend
from looop.workers.review import Review, review, worker_tree
from looop.workers.reviewrounds import Round


@dataclass(frozen=True)
class Checkouts:
    """Where worker `wid`'s checkouts are: `host` (an SSH host), `pod`, or neither (here)."""

    wid: str
    host: str | None = None
    pod: HostedKube | None = None

    @property
    def away(self) -> bool:
        return bool(self.host) or self.pod is not None


def checkouts_of(ctx: Ctx, wid: str) -> Checkouts:
    host = ssh_host(ctx, wid)
    return Checkouts(wid, host, None if host else pod_of(ctx, wid))


def read_review(ctx: Ctx, c: Checkouts) -> Review:
    if c.host:
        return far_review(ctx, c.wid, c.host)
    if c.pod is not None:
        return pod_review(ctx, c.pod, c.wid)
    return review(ctx, c.wid)


def add_comments(
    ctx: Ctx, c: Checkouts, on_lines: list[tuple[str, str]], on_all: list[str]
) -> Round:
    if c.host:
        return far_comments(ctx, c.wid, c.host, on_lines, on_all)
    if c.pod is not None:
        return pod_comments(ctx, c.wid, c.pod, on_lines, on_all)
    return reviewsend.add_comments(ctx, c.wid, on_lines, on_all)


def send_round(ctx: Ctx, knobs: Knobs, c: Checkouts) -> Round:
    if c.host:
        return far_send(ctx, knobs, c.wid, c.host)
    if c.pod is not None:
        return pod_send(ctx, knobs, c.wid, c.pod)
    return reviewsend.send(ctx, knobs, c.wid)


def land_where(
    ctx: Ctx,
    knobs: Knobs,
    c: Checkouts,
    mode: str | None,
    into: str | None,
    actor: str,
    repo: str | None = None,
    *,
    at: Approved,
) -> Landed:
    """Landed where its checkouts are, at the tips the human approved (`at`), never later."""
    if c.host:
        return far_land(ctx, knobs, c.wid, c.host, mode, into, actor, repo, at=at)
    if c.pod is not None:
        return pod_land(ctx, knobs, c.wid, c.pod, mode, into, actor, repo, at=at)
    return land(ctx, knobs, c.wid, mode, into, actor, repo, at=at)


def has_change(ctx: Ctx, c: Checkouts) -> None:
    """Nothing when the worker has a change to comment on; else its one line. Away, its
    host or pod says so when asked."""
    if not c.away:
        worker_tree(ctx, c.wid)
