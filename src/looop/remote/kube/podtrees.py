"""A pod's checkouts as the review and land code reads them: before its session starts, `looop
pod run` records each clone the init containers made (checkouts.py) as a worker checkout
record in the pod's own data dir — a clone (`origin` its URL), on the branch it was cloned
on, its base the commit the clone stood at. From then on the pod's `looop pod change` reads
the change with the same code a worker at home is reviewed with (workers/review.py).

A record is written only where none is: a `pod run` begun again in the same pod keeps the
first base. A clone git cannot read is left unrecorded (its review then says it has no
checkout): the worker runs all the same."""

from __future__ import annotations

import os
from collections.abc import Sequence

from looop.core.context import Ctx
from looop.workers.treerecord import Tree, git_in, load, save

CHECKOUTS_ENV = "LOOOP_CHECKOUTS"  # the Job's folder names of several repos, in order


def _clone(ctx: Ctx, wid: str, path: str, part: str, parts: tuple[str, ...]) -> Tree | None:
    git = os.path.join(path, ".git")
    if not os.path.isdir(git):
        return None
    probe = Tree(wid, path, "", "", path, git, git, origin="?")
    facts = []
    for args in (
        ("symbolic-ref", "-q", "--short", "HEAD"),
        ("rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        ("remote", "get-url", "origin"),
    ):
        done = git_in(ctx.env, path, *args, tree=probe)
        if done.returncode != 0 or not done.stdout.strip():
            return None
        facts.append(done.stdout.strip())
    branch, base, url = facts
    return Tree(wid, path, branch, base, path, git, git, origin=url, part=part, parts=parts)


def record(ctx: Ctx, wid: str, workdir: str, names: Sequence[str]) -> list[Tree]:
    """Record the pod's clones of worker `wid`: `workdir` the one repository's checkout, or
    (`names`: several) the folder holding each; what was recorded, in order."""
    if load(ctx, wid) is not None:
        return []
    parts = tuple(names) if len(names) > 1 else ()
    places = [(os.path.join(workdir, n), n) for n in parts] or [(workdir, "")]
    trees = [_clone(ctx, wid, path, part, parts if i == 0 else ()) for i, (path, part) in
             enumerate(places)]  # fmt: skip
    got = [t for t in trees if t is not None]
    if len(got) != len(trees):
        return []  # a change is never shown or landed half
    for tree in reversed(got):  # the first, which names the others, last
        save(ctx, tree)
    return got
