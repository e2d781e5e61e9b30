"""`looop land ID`: a human lands a worker's change — its branch merged into its base in the
user's repository (a fast-forward or a merge commit), or pushed with a pull request opened by a
configurable command. A human's action only: no decision names it (the action table has no
row for it); a decision may only ask for it.

Everything is checked before anything changes (each refusal one line: a branch that moved under
the worker, a base that is gone or rewritten, a dirty checkout, a conflict, uncommitted work of
the worker's); then the one change runs under a WAL record and is journaled with who approved
it and the commit it produced. A merge is made off to the side (`merge-tree`, `commit-tree`)
and put in place by one compare-and-swap of the base branch (or a fast-forward of the checkout
that holds it), so a landing is whole or absent."""

from __future__ import annotations

import os
from dataclasses import dataclass

from looop.act import landpr
from looop.act.journal import append_journal
from looop.act.landconfig import LandConfig, land_config
from looop.act.wal import intent
from looop.core.context import Ctx
from looop.home import outcomes
from looop.home.config import Knobs
from looop.home.errors import LooopError
from looop.sessions.state import SessionError, get_session
from looop.workers import reviewgit
from looop.workers.ids import normalise_target
from looop.workers.review import branch_moved, worker_tree
from looop.workers.treegit import git_in, why_failed
from looop.workers.treerecord import Tree
from looop.workers.treework import is_dirty
from looop.workers.worktree import checked_out, release


class LandError(LooopError):
    pass


class LandConflict(LandError):
    """The branch conflicts with its base; `comment` is what to send the worker about it."""

    def __init__(self, message: str, comment: str) -> None:
        super().__init__(message)
        self.comment = comment


@dataclass(frozen=True)
class Plan:
    tree: Tree
    tip: str  # the worker's branch now
    into: str  # the base branch
    old: str  # the base branch's commit now
    checkout: str  # the checkout holding `into` ("": none)
    mode: str  # "ff", "merge" or "pr"


@dataclass(frozen=True)
class Landed:
    wid: str
    mode: str
    branch: str
    into: str
    commit: str  # what the base branch points at now (merge, ff), or the tip pushed (pr)
    url: str = ""  # the PR command's last line of output


def _git(ctx: Ctx, cwd: str, *args: str) -> tuple[int, str, str]:
    done = git_in(ctx.env, cwd, *args)
    return done.returncode, done.stdout.strip(), why_failed(done) if done.returncode else ""


def _base_branch(ctx: Ctx, tree: Tree, into: str | None) -> tuple[str, str]:
    """The branch to land into (given, or the one the user's checkout is on) and its commit."""
    if into is None:
        code, head, _ = _git(ctx, tree.repo, "symbolic-ref", "-q", "--short", "HEAD")
        if code != 0 or not head:
            raise LandError(
                f"your checkout at {tree.repo} is on no branch — check out the branch to "
                "land into, or give --into BRANCH"
            )
        into = head
    if into == tree.branch:
        raise LandError(f"{into} is the worker's own branch — give the base with --into BRANCH")
    code, old, _ = _git(ctx, tree.repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{into}")
    if code != 0 or not old:
        raise LandError(f"the base branch {into} is gone from {tree.repo} — give --into BRANCH")
    return into, old


def _check_history(ctx: Ctx, tree: Tree, into: str, old: str, tip: str) -> None:
    repo, wid = tree.repo, tree.wid
    code, _, _ = _git(ctx, repo, "merge-base", "--is-ancestor", tree.base, old)
    if code != 0:
        raise LandError(
            f"the base branch {into} no longer holds {tree.base[:12]}, where worker {wid} "
            "started (rewritten?) — land it by hand"
        )
    code, _, _ = _git(ctx, repo, "merge-base", "--is-ancestor", tip, old)
    if code == 0:
        raise LandError(f"{into} already holds worker {wid}'s branch — nothing to land")


def _check_worker(ctx: Ctx, tree: Tree, tip: str) -> None:
    wid = tree.wid
    if tree.clone:
        raise LandError(f"worker {wid} works in a clone on a host — land it there by hand")
    if branch_moved(tree, tip):
        raise LandError(
            f"worker {wid}'s branch {tree.branch} moved under it (now {tip[:12]}, not where "
            f"its checkout left it) — review it again with `looop review {wid}`"
        )
    if not tree.removed and os.path.isdir(tree.path) and is_dirty(ctx.env, tree) is not False:
        raise LandError(
            f"worker {wid}'s worktree holds uncommitted work that would not land — ask it to "
            f"commit: `looop review {wid} --comment-all 'commit your work' --send`"
        )


def _check_checkout(ctx: Ctx, plan_repo: str, into: str) -> str:
    """The checkout holding `into` ("": none), refused while it has uncommitted changes."""
    where = checked_out(ctx.env, plan_repo).get(into, "")
    if where:
        code, out, why = _git(ctx, where, "status", "--porcelain", "--untracked-files=no")
        if code != 0:
            raise LandError(f"git status in {where}: {why}")
        if out:
            raise LandError(
                f"your checkout at {where} has uncommitted changes — commit or stash them, "
                "then land"
            )
    return where


def _merged_tree(ctx: Ctx, tree: Tree, into: str, old: str, tip: str) -> str:
    """The tree a merge of the two would hold, made off to the side; a conflict refused."""
    code, out, why = _git(
        ctx, tree.repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", old, tip
    )
    lines = out.splitlines()
    if code == 1 and lines:
        files = ", ".join(lines[1:6]) + (" …" if len(lines) > 6 else "")
        wid = tree.wid
        comment = f"merge {into} into your branch: conflicts in {files}"
        raise LandConflict(
            f"worker {wid}'s branch conflicts with {into} in {files} — send it back: "
            f"`looop review {wid} --comment-all '{comment}' --send`",
            comment,
        )
    if code != 0 or not lines:
        raise LandError(f"git merge-tree in {tree.repo}: {why}")
    return lines[0]


def plan(ctx: Ctx, wid: str, mode: str, into: str | None) -> Plan:
    """Every check, nothing changed."""
    tree = worker_tree(ctx, wid)
    tip = reviewgit.branch_tip(ctx, tree)
    _check_worker(ctx, tree, tip)
    into, old = _base_branch(ctx, tree, into)
    _check_history(ctx, tree, into, old, tip)
    if mode == "pr":
        return Plan(tree, tip, into, old, "", mode)
    checkout = _check_checkout(ctx, tree.repo, into)
    if mode == "ff":
        code, _, _ = _git(ctx, tree.repo, "merge-base", "--is-ancestor", old, tip)
        if code != 0:
            raise LandError(
                f"{into} moved since worker {wid} started: it cannot fast-forward — land "
                "with --merge"
            )
    else:
        _merged_tree(ctx, tree, into, old, tip)
    return Plan(tree, tip, into, old, checkout, mode)


def _merge_commit(ctx: Ctx, p: Plan) -> str:
    merged = _merged_tree(ctx, p.tree, p.into, p.old, p.tip)
    msg = f"Merge {p.tree.branch} into {p.into} (looop worker {p.tree.wid})"
    code, out, why = _git(
        ctx, p.tree.repo, "commit-tree", merged, "-p", p.old, "-p", p.tip, "-m", msg
    )
    if code != 0 or not out:
        raise LandError(f"git commit-tree in {p.tree.repo}: {why} — nothing landed")
    return out


def _move_base(ctx: Ctx, p: Plan, new: str) -> None:
    """The base branch to `new`, as one step: the checkout holding it fast-forwards (git
    checks the files first), else the ref moves only if it still stands at `old`."""
    if p.checkout:
        code, _, why = _git(ctx, p.checkout, "merge", "--ff-only", "--no-edit", "-q", new)
    else:
        ref = f"refs/heads/{p.into}"
        code, _, why = _git(ctx, p.tree.repo, "update-ref", "-m", "looop land", ref, new, p.old)
    if code != 0:
        raise LandError(f"{p.into} could not move to the landed commit ({why}) — nothing landed")


def land(
    ctx: Ctx, knobs: Knobs, worker_id: str, mode: str | None, into: str | None, actor: str
) -> Landed:
    """Land the worker's change; `mode` None: as configured (land.merge). `actor` says who
    approved it and from where (journaled)."""
    wid = normalise_target(worker_id)
    cfg: LandConfig = land_config(ctx.config().raw)
    p = plan(ctx, wid, mode or cfg.merge, into)
    summary = f"land worker {wid} ({p.tree.branch} into {p.into}, {p.mode})"
    with intent(ctx, actor, "land", f"{wid}:{p.tip}", summary):
        if p.mode == "pr":
            url = landpr.push_and_open(ctx, cfg, p.tree, p.tip, p.into)
            done = Landed(wid, "pr", p.tree.branch, p.into, p.tip, url)
        else:
            new = p.tip if p.mode == "ff" else _merge_commit(ctx, p)
            _move_base(ctx, p, new)
            done = Landed(wid, p.mode, p.tree.branch, p.into, new)
    how = {"ff": "fast-forward", "merge": "merge commit", "pr": "pull request"}[done.mode]
    where = f" {done.url}" if done.url else ""
    append_journal(
        ctx,
        knobs,
        f"{actor}: landed worker {wid}: {done.branch} into {done.into} as {how} at "
        f"{done.commit[:12]}{where}",
    )
    ctx.events.record(
        "worker_landed", id=wid, mode=done.mode, into=done.into, commit=done.commit, actor=actor
    )
    _outcome_landed(ctx, done)
    if done.mode != "pr":  # a pull request is not landed yet: its worktree may be needed
        _tidy(ctx, p.tree)
    return done


def _outcome_landed(ctx: Ctx, done: Landed) -> None:
    """Landed overrides how it ended (home/outcomes.py): a worker that ended is recounted as
    landed; a live one is landed when it ends. A pull request is landed when opened."""
    data, wid = str(ctx.paths.data), done.wid
    try:
        gen: str | None = get_session(ctx.paths.data, wid).started_at
    except SessionError:
        gen = None
    how = {"mode": done.mode, "into": done.into, "commit": done.commit}
    try:
        was = outcomes.mark_landed(data, wid, gen, how)
    except OSError as e:  # the landing stands; its outcome is said unwritten
        ctx.events.emit("warn", "worker.ended", f"worker {wid}'s outcome not recorded: {e}")
        return
    if was is not None:
        ctx.events.emit("ok", "worker.ended", f"worker {wid}: {was} → landed", id=wid)
        ctx.events.record("worker_ended", id=wid, outcome="landed", was=was)


def _tidy(ctx: Ctx, tree: Tree) -> None:
    """A merged worker that no longer runs needs its worktree no more: removed now, its
    branch kept (it is in the base). A live one keeps it until its session is reaped."""
    try:
        if get_session(ctx.paths.data, tree.wid).alive:
            return
    except SessionError:
        pass
    release(ctx, tree.wid)
