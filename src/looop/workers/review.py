"""A worker's change as a reviewer reads it: its commits, the diff against its base (files with
their stats and hunks), whether its verify passed, its own summary, and the comment rounds sent
back with what changed since the last. One function every face reads (`looop review`, the web's
/api/v1/workers/{id}/review)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import CorruptState, LooopError
from looop.sandbox.worker import room
from looop.sessions.state import SessionError, get_session
from looop.views import outcomes
from looop.workers import landask, reviewgit
from looop.workers.errors import NoSuchWorker
from looop.workers.ids import normalise_target
from looop.workers.landask import Proposal
from looop.workers.reviewgit import Commit, FileChange
from looop.workers.reviewrounds import Round, load_rounds, shown
from looop.workers.treerecord import Tree, WorktreeError, held_tip, load, load_all
from looop.workers.treework import is_dirty

MAX_SUMMARY = 64 * 1024  # bytes of a worker's report shown


@dataclass(frozen=True)
class Verify:
    state: str  # "passed", "failed", "pending" (to run once the worker ends), "none"
    cmd: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""


@dataclass(frozen=True)
class RepoChange:
    """The change in one repository of the worker (a worker of several has one each)."""

    name: str  # its checkout's folder in the worker's workspace ("": a worker of one repo)
    repo: str
    branch: str
    base: str
    tip: str
    commits: tuple[Commit, ...]
    files: tuple[FileChange, ...]
    uncommitted: bool | None
    moved: bool


@dataclass(frozen=True)
class Review:
    wid: str
    repo: str
    branch: str
    base: str
    tip: str
    commits: tuple[Commit, ...]
    files: tuple[FileChange, ...]
    verify: Verify
    summary: str  # the worker's own report ("": it wrote none)
    summary_from: str  # where it was read
    uncommitted: bool | None  # its worktree holds work no commit has (None: unknown / gone)
    moved: bool  # the branch is not where the worker's checkout left it
    rounds: tuple[Round, ...]
    since_last: tuple[Commit, ...]  # commits after the last round sent
    # every repository's change in the worker's order; the fields above are the first's
    repos: tuple[RepoChange, ...] = ()
    proposal: Proposal | None = None  # the decider's landing proposal waiting on the human
    landed: str = ""  # "landed into main at …" once its base holds it: nothing left to land

    def tips(self) -> dict[str, str]:
        """Each repository's tip as shown, by its folder's name ("": a worker of one)."""
        return {each.name: each.tip for each in self.repos} or {"": self.tip}

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["v"] = 1
        for f, change in zip(out["files"], self.files, strict=True):
            f["binary"] = change.binary
        for got, each in zip(out["repos"], self.repos, strict=True):
            for f, change in zip(got["files"], each.files, strict=True):
                f["binary"] = change.binary
        return out


def worker_tree(ctx: Ctx, wid: str) -> Tree:
    tree = load(ctx, wid)
    if tree is None and (far := _far_host(ctx, wid)):
        raise WorktreeError(
            f"worker {wid} works on host {far}: its checkouts are there, not here — `looop "
            f"review {wid}` and `looop land {wid}` reach them there (an SSH host's), `looop "
            f"worker diff {wid}` shows its change"
        )
    if tree is None and not (ctx.paths.sessions / wid).is_dir():
        raise NoSuchWorker(f"no worker {wid} — `looop ls` lists them")
    if tree is None:
        raise WorktreeError(
            f"worker {wid} has no worktree — only a worker started with --repo has a change "
            "to review or land"
        )
    return tree


def _far_host(ctx: Ctx, wid: str) -> str:
    """The host a worker away from home runs on, as the home's record says ("": none)."""
    try:
        rec = store.read_json_object(ctx.paths.host_record(wid))
    except (CorruptState, OSError):
        return ""
    host = rec.get("host") if rec else None
    return host if isinstance(host, str) and host.isprintable() else ""


def verify_of(ctx: Ctx, wid: str) -> Verify:
    """What verify/<id>.json says (the beat writes it once the worker ended)."""
    try:
        rec = store.read_json_object(ctx.paths.verify / f"{wid}.json")
    except (CorruptState, OSError):
        rec = None
    if rec is None:
        pending = (ctx.paths.verify / f"{wid}.cmd").exists()
        return Verify("pending" if pending else "none")
    code = rec.get("exit_code")
    return Verify(
        "passed" if rec.get("pass") is True else "failed",
        str(rec.get("cmd", "")),
        code if isinstance(code, int) else None,
        rec.get("timed_out") is True,
        str(rec.get("output", ""))[-4000:],
    )


def summary_of(ctx: Ctx, wid: str) -> tuple[str, str]:
    """The worker's own report (reports/<id>.md, or its box's room), bounded, never through a
    symlink the worker left; ("", "") when it wrote none."""
    for folder in (os.path.join(room(ctx, wid), "reports"), str(ctx.paths.reports)):
        path = os.path.join(folder, f"{wid}.md")
        try:
            raw = store.read_regular(path, MAX_SUMMARY, follow=False)
        except OSError:
            continue
        text = raw[:MAX_SUMMARY].decode("utf-8", "replace")
        return text + ("\n…(cut)" if len(raw) > MAX_SUMMARY else ""), path
    return "", ""


def branch_moved(tree: Tree, tip: str) -> bool:
    """The branch stands where no checkout of the worker left it (someone else moved it)."""
    gone = tree.removed or not os.path.isdir(tree.path)
    left = tree.tip if gone else held_tip(tree)  # where its own checkout left it
    return bool(left) and not tree.clone and left != tip


def worker_trees(ctx: Ctx, wid: str) -> list[Tree]:
    """Every checkout of the worker (one per repository), its first repo's first."""
    worker_tree(ctx, wid)  # the one line when it has none
    return load_all(ctx, wid)


def repo_change(ctx: Ctx, tree: Tree) -> RepoChange:
    """One repository's part of the change, read once."""
    tip = reviewgit.branch_tip(ctx, tree)
    live = not tree.removed and os.path.isdir(tree.path)
    return RepoChange(
        name=tree.part,
        repo=tree.repo,
        branch=tree.branch,
        base=tree.base,
        tip=tip,
        commits=tuple(reviewgit.commits(ctx, tree, tree.base, tip)),
        files=tuple(reviewgit.changes(ctx, tree, tree.base, tip)),
        uncommitted=is_dirty(ctx.env, tree) if live else None,
        moved=branch_moved(tree, tip),
    )


def first_of(c: RepoChange) -> dict[str, Any]:
    """The fields of a Review that are its first repository's."""
    keys = ("repo", "branch", "base", "tip", "commits", "files", "uncommitted", "moved")
    return {k: getattr(c, k) for k in keys}


def review(ctx: Ctx, worker_id: str) -> Review:
    """Everything `looop review ID` shows, read once; one line when it cannot be read."""
    wid = normalise_target(worker_id)
    trees = worker_trees(ctx, wid)
    repos = tuple(repo_change(ctx, t) for t in trees)
    tree, first = trees[0], repos[0]
    tip = first.tip
    rounds = load_rounds(ctx, wid)
    since: list[Commit] = []
    sent = [r for r in rounds if r.sent]
    if sent and sent[-1].tip != tip:
        try:
            since = reviewgit.commits(ctx, tree, sent[-1].tip, tip)
        except LooopError:
            since = []  # the tip it was sent on is gone (rewritten): the commits say it all
    summary, source = summary_of(ctx, wid)
    return Review(
        wid=wid,
        **first_of(first),
        verify=verify_of(ctx, wid),
        summary=summary,
        summary_from=source,
        rounds=tuple(shown(ctx, r) for r in rounds),
        since_last=tuple(since),
        repos=repos,
        proposal=landask.pending(ctx, wid),
        landed=landed_of(ctx, wid),
    )


def landed_of(ctx: Ctx, wid: str) -> str:
    """What its outcome record says of this generation's landing ("": none, or a pull
    request still open)."""
    got = (outcomes.read_record(str(ctx.paths.data), wid) or {}).get("landed")
    try:
        gen: str | None = get_session(ctx.paths.data, wid).started_at
    except SessionError:
        gen = None
    if not isinstance(got, dict) or got.get("gen") != gen or outcomes.how_landed(got) == "pr":
        return ""
    return f"landed into {got.get('into')} at {str(got.get('commit'))[:12]}"
