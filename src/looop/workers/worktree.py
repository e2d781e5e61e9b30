"""A worker in its own `git worktree`: <data>.work/checkouts/<id> on its own branch (default
`looop/<id>`), made when the worker starts and removed when its session is reaped — its branch
kept, and a dirty worktree (uncommitted changes or untracked files) never removed: it stays,
and the event says where it is and how to remove it.

What the worker's worktree is lives in DATA/worktrees/<id>.json (repo, branch, base commit,
paths), written before `git worktree add` so a crash in between still leaves a record.

On an SSH host (remote/ssh/satellite.py, in the satellite's data dir) a worker may instead
get a clone of a URL at the same place, on its own branch: the same record (with `origin`,
the URL), the same `worker diff` and dirtiness; removed only when it holds nothing
uncommitted and nothing its remote lacks, since a clone's commits live nowhere else.

The record and git as looop runs it are treerecord.py, what a checkout holds (dirty,
unpushed, its diff) treework.py, and what a sandboxed worker may write in it sandbox/checkout.py."""

import contextlib
import os
from collections.abc import Mapping
from shlex import quote
from typing import NamedTuple

from looop.core import provenance
from looop.core.context import Ctx
from looop.home import store
from looop.home.sessionfiles import remove_tree
from looop.home.where import SANDBOX_SETTINGS, WORKTREES, expand
from looop.workers.treerecord import (
    GIT_TIMEOUT_S,
    Tree,
    WorktreeError,
    cleared,
    config_names,
    file_of,
    git_env,
    git_in,
    held_tip,
    is_ours,
    load,
    neutralised,
    parts_of,
    read_gitdir,
    record_file,
    rev,
    save,
    why_failed,
)
from looop.workers.treework import holds_work, is_dirty

CLONE_TIMEOUT_S = 600.0  # a whole clone over the network


class Plan(NamedTuple):
    wid: str
    repo: str
    common: str
    branch: str
    exists: bool  # check out this existing branch rather than make it
    base: str  # the commit the worktree starts from (the branch's tip, else HEAD)
    ours: bool = False  # that existing branch is the one looop left for this worker
    part: str = ""  # its folder in the workspace, for a worker of several repos
    parts: tuple[str, ...] = ()  # every part, in order (on the first repo's plan only)


def tree_path(ctx: Ctx, wid: str) -> str:
    """Where a new checkout of the worker goes: beside the data dir, never in it."""
    return str(ctx.paths.checkouts / wid)


def checkout_path(ctx: Ctx, wid: str, part: str = "") -> str:
    """Where a checkout goes: the worker's own folder, or `part` inside it (several repos)."""
    return os.path.join(tree_path(ctx, wid), part) if part else tree_path(ctx, wid)


def left_behind(ctx: Ctx, wid: str) -> bool:
    """A checkout of this id may be left (here, or where a home of before kept them)."""
    return any(os.path.lexists(p) for p in (tree_path(ctx, wid), ctx.paths.worktrees / wid))


def default_branch(wid: str) -> str:
    return f"looop/{wid}"


def resolve_repo(repo: str, env: Mapping[str, str]) -> str:

    if (got := expand(repo, env.get("HOME"))) is None:
        raise WorktreeError(f"repo {repo}: HOME is not set, so ~ means nothing — give a path")
    repo = got
    if not os.path.isabs(repo):
        if "://" in repo or "@" in repo.split("/", 1)[0]:
            raise WorktreeError(
                f"repo {repo}: a URL is cloned on a host (--host NAME, docs/HOSTS.md); here "
                "give the absolute path of a repository"
            )
        raise WorktreeError(f"repo {repo}: give an absolute path (or ~/…)")
    return os.path.normpath(repo)


def check_branch(env: Mapping[str, str], cwd: str, branch: str) -> None:
    """A name git takes as a new branch, as given (no @{-1} shorthands, no leading dash)."""
    if not branch.strip() or branch.startswith("-") or branch.startswith("@"):
        raise WorktreeError(f"branch '{branch}' is not a valid branch name — pick another")
    done = git_in(env, cwd, "check-ref-format", "--branch", branch)
    if done.returncode != 0 or done.stdout.strip() != branch:
        raise WorktreeError(
            f"branch '{branch}' is not a valid branch name (git check-ref-format) — pick another"
        )


def checked_out(env: Mapping[str, str], repo: str) -> dict[str, str]:
    """branch name -> the worktree it is checked out in."""
    done = git_in(env, repo, "worktree", "list", "--porcelain")
    out: dict[str, str] = {}
    where = ""
    for line in done.stdout.splitlines():
        if line.startswith("worktree "):
            where = line[len("worktree ") :]
        elif line.startswith("branch refs/heads/"):
            out[line[len("branch refs/heads/") :]] = where
    return out


def plan(
    ctx: Ctx, wid: str, repo: str, branch: str | None, decided: bool = False, part: str = ""
) -> Plan:
    """Check everything a worktree needs without changing anything; one line when it cannot.
    `decided`: a decision's start, which may put the worker on no existing branch but the
    one looop left for it. `part`: its folder in the workspace of a worker of several repos."""
    env = ctx.env
    where = resolve_repo(repo, env)
    if not os.path.exists(where):
        raise WorktreeError(f"repo {where} does not exist — give the path of a git repository")
    if not os.path.isdir(where):
        raise WorktreeError(f"repo {where} is not a folder — give the path of a git repository")
    # one call: rev-parse answers in order and stops at --show-toplevel in a bare repo
    got = git_in(
        env, where, "rev-parse", "--is-bare-repository", "--git-common-dir", "--show-toplevel"
    )
    lines = got.stdout.splitlines()
    if lines[:1] == ["true"]:
        raise WorktreeError(f"repo {where} is a bare repository — give a clone with a working tree")
    if got.returncode != 0 or not lines:
        raise WorktreeError(f"repo {where} is not a git repository ({why_failed(got)})")
    if len(lines) < 3:
        raise WorktreeError(f"repo {where}: git did not name its top folder")
    top_dir = lines[2]
    common = os.path.normpath(os.path.join(where, lines[1]))
    name = branch if branch is not None else default_branch(wid)
    check_branch(env, top_dir, name)
    tip = rev(env, top_dir, f"refs/heads/{name}^{{commit}}")
    head = tip or rev(env, top_dir, "HEAD")
    if not head:
        raise WorktreeError(
            f"repo {top_dir} has no commits yet, so there is nothing to branch from — "
            f"commit once first (git -C {quote(top_dir)} commit --allow-empty -m start)"
        )
    ours = False
    if tip:
        busy = checked_out(env, top_dir).get(name)
        mine = checkout_path(ctx, wid, part)
        if busy is not None and os.path.normpath(busy) != os.path.normpath(mine):
            raise WorktreeError(
                f"branch '{name}' is checked out at {busy} — give the worker another "
                "--branch, or switch that checkout to another branch first"
            )
        ours = is_ours(_earlier(ctx, wid, common), common, name, head)
        if not ours:
            _refuse_foreign(wid, top_dir, name, decided)
    return Plan(wid, top_dir, common, name, bool(tip), head, ours, part)


def _earlier(ctx: Ctx, wid: str, common: str) -> Tree | None:
    """The last start's record of this worker's checkout of the repo at `common` (its first
    repo's, or one of its other parts': a worker may come back with its repos reordered)."""
    first = load(ctx, wid)
    if first is None:
        return None
    for tree in parts_of(ctx, first):
        if os.path.normpath(tree.common) == os.path.normpath(common):
            return tree
    return first


def _refuse_foreign(wid: str, repo: str, name: str, decided: bool) -> None:
    """A branch looop did not leave for this worker is never taken over silently: its
    default `looop/<id>` made or moved by someone else (a box could plant one), or any
    existing branch a decision names. A human may name an existing branch of theirs."""
    if name == default_branch(wid):
        raise WorktreeError(
            f"worker {wid}: branch '{name}' in {repo} is not where looop left it for this "
            f"worker (made or moved by someone else) — look at it (git -C {quote(repo)} log "
            f"{name}), then rename it (git -C {quote(repo)} branch -m {name} NEW) or give the "
            "worker another --branch"
        )
    if decided:
        raise WorktreeError(
            f"worker {wid}: branch '{name}' already exists in {repo} and looop did not make "
            f"it for this worker, so a decision may not put a worker on it — name a new "
            f"branch, or leave 'branch' out ({default_branch(wid)})"
        )


def leftover(ctx: Ctx, wid: str) -> Tree | None:
    """Refuse to start over a worktree this id left that still holds work; a clean one is
    returned, for the reap that follows to remove without asking git again (release)."""
    path = tree_path(ctx, wid)
    if not os.path.lexists(path):
        return None
    tree = load(ctx, wid)
    several = tree is not None and bool(tree.parts) and os.path.dirname(tree.path) == path
    if tree is None or (
        not several and (tree.removed or os.path.normpath(tree.path) != os.path.normpath(path))
    ):
        raise WorktreeError(
            f"worker {wid}: {path} is in the way and looop did not make it — move it "
            "aside or remove it, then start the worker again"
        )
    for part in parts_of(ctx, tree) if several else [tree]:
        if not part.removed and holds_work(ctx.env, part) is not False:
            what = "clone" if part.clone else "checkout" if several else "worktree"
            held, fix = (
                ("holds work its remote lacks (uncommitted, or commits not pushed)", "push it")
                if part.clone
                else ("holds uncommitted work", "commit it there")
            )
            raise WorktreeError(
                f"worker {wid}: its last {what} {part.path} {held} — {fix}, or remove it "
                f"({_removal(part)}), then start the worker again"
            )
    return tree


def _removal(tree: Tree) -> str:
    """The command that removes the checkout whatever it holds."""
    if tree.clone:
        return f"rm -rf {quote(tree.path)}"
    return f"git -C {quote(tree.repo)} worktree remove --force {quote(tree.path)}"


def create(ctx: Ctx, p: Plan) -> Tree:
    """`git worktree add` at <data>.work/checkouts/<id>; the record is written first."""
    env = ctx.env
    path = checkout_path(ctx, p.wid, p.part)
    os.makedirs(ctx.paths.worktrees, exist_ok=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    base = p.base
    guess = os.path.join(p.common, WORKTREES, p.wid)
    owned = p.ours or not p.exists
    tree = Tree(
        p.wid, p.repo, p.branch, base, path, p.common, guess, created=not p.exists, owned=owned,
        part=p.part, parts=p.parts,
    )  # fmt: skip
    before = load(ctx, p.wid, "" if p.parts or not p.part else p.part)  # says whose branch is whose
    save(ctx, tree)
    # the checkout may be a branch a worker wrote: its `.gitattributes` may name any filter
    # the user's config defines, so none runs (nor a hook)
    drivers = neutralised(config_names(git_env(env), p.repo, GIT_TIMEOUT_S))
    if p.exists:
        done = git_in(env, p.repo, "worktree", "add", path, p.branch, drivers=drivers)
    else:
        done = git_in(env, p.repo, "worktree", "add", "-b", p.branch, path, base, drivers=drivers)
    gitdir = read_gitdir(path) if done.returncode == 0 else None
    if gitdir is None:
        if before is not None:
            save(ctx, before)
        else:
            store.remove(file_of(ctx, tree))
        raise WorktreeError(f"worker {p.wid}: git worktree add failed: {why_failed(done)}")
    tree = tree._replace(gitdir=gitdir)  # git names the folder (w1, or w11 when w1 is taken)
    save(ctx, tree)
    return tree


class ClonePlan(NamedTuple):
    wid: str
    url: str
    branch: str


def plan_clone(ctx: Ctx, wid: str, url: str, branch: str | None) -> ClonePlan:
    """A clone of `url` for the worker, checked without changing anything (one line). The
    URL itself is checked first by the caller, against remote/repospec.py's rules."""
    name = branch if branch is not None else default_branch(wid)
    os.makedirs(ctx.paths.data, exist_ok=True)
    check_branch(ctx.env, str(ctx.paths.data), name)
    return ClonePlan(wid, url, name)


def clone(ctx: Ctx, p: ClonePlan) -> Tree:
    """`git clone` of the URL at <data>.work/checkouts/<id>, then the worker's branch checked out:
    the remote's branch of that name when it has one, else a new one from its default
    branch. The record is written first; a failure takes back everything it made."""
    env = ctx.env
    path = tree_path(ctx, p.wid)
    os.makedirs(ctx.paths.worktrees, exist_ok=True)
    os.makedirs(ctx.paths.checkouts, exist_ok=True)
    git = os.path.join(path, ".git")
    tree = Tree(p.wid, path, p.branch, "", path, git, git, created=True, origin=p.url)
    save(ctx, tree)
    try:
        here = str(ctx.paths.checkouts)
        drivers = neutralised(config_names(git_env(env), here, GIT_TIMEOUT_S))  # as create's
        done = git_in(
            env, here, "clone", "-q", "--", p.url, path, timeout=CLONE_TIMEOUT_S, drivers=drivers
        )
        if done.returncode != 0:
            raise WorktreeError(f"worker {p.wid}: git clone {p.url} failed: {why_failed(done)}")
        if not rev(env, path, "HEAD", tree):
            raise WorktreeError(
                f"worker {p.wid}: {p.url} has no commits yet, so there is nothing to branch "
                "from — push a first commit there"
            )
        theirs = f"refs/remotes/origin/{p.branch}"
        if rev(env, path, f"refs/heads/{p.branch}"):
            got = git_in(env, path, "checkout", "-q", p.branch, "--", tree=tree)
        elif rev(env, path, theirs):
            got = git_in(env, path, "checkout", "-q", "-b", p.branch, "--track", theirs, tree=tree)
        else:
            got = git_in(env, path, "checkout", "-q", "-b", p.branch, tree=tree)
        if got.returncode != 0:
            raise WorktreeError(f"worker {p.wid}: cannot check out {p.branch}: {why_failed(got)}")
        base = rev(env, path, "HEAD", tree)
    except WorktreeError:
        undo(ctx, tree)
        raise
    tree = tree._replace(base=base)
    save(ctx, tree)
    return tree


def undo(ctx: Ctx, tree: Tree) -> None:
    """The start failed after the worktree was made: take it back (and a branch it made)."""
    env = ctx.env
    if tree.clone:
        remove_tree(os.fspath(tree.path))
        store.remove(record_file(ctx, tree.wid))
        return
    git_in(env, tree.repo, "worktree", "remove", "--force", tree.path)
    tip = branch_tip(ctx, tree)
    if tree.created and tip == tree.base:  # nothing was committed on it
        git_in(env, tree.repo, "branch", "-D", tree.branch)
    elif tree.ours:  # its own branch from an earlier start: still its own
        save(ctx, tree._replace(removed=True, tip=tip))
        return
    store.remove(file_of(ctx, tree))


def branch_tip(ctx: Ctx, tree: Tree) -> str:
    """The commit the worker's branch stands on now ("" when it is gone)."""
    return rev(ctx.env, tree.repo, f"refs/heads/{tree.branch}")


def release(ctx: Ctx, wid: str, clean: Tree | None = None) -> None:
    """The worker's session is reaped: remove its worktree, keep its branch. A dirty (or
    unreadable) worktree is kept, and said once, with where it is and how to remove it.
    `clean`: the record leftover just found clean (neither read nor asked again)."""
    tree = clean if clean is not None else load(ctx, wid)
    for part in parts_of(ctx, tree) if tree is not None else []:
        _release_one(ctx, part, clean is not None)
    if tree is not None and tree.parts:  # several repos: their folder too
        with contextlib.suppress(OSError):
            os.rmdir(tree_path(ctx, wid))  # only when every checkout went


def release_checkout(ctx: Ctx, tree: Tree) -> None:
    """One checkout of a worker of several repos removed, known clean (its work saved
    elsewhere); their folder too once it is empty."""
    _release_one(ctx, tree, True)
    with contextlib.suppress(OSError):
        os.rmdir(tree_path(ctx, tree.wid))


def _release_one(ctx: Ctx, tree: Tree, known_clean: bool) -> None:
    wid = tree.wid
    if tree.removed:
        return
    if tree.clone:
        _release_clone(ctx, tree, known_clean)
        return
    cleared(ctx, tree)  # first: git below would hang on them
    tip = _let_go(ctx, tree)  # before git removes the checkout's admin folder (its HEAD log)
    if not os.path.lexists(tree.path):
        git_in(ctx.env, tree.repo, "worktree", "prune")
        save(ctx, tree._replace(removed=True, tip=tip))
        return
    dirty = False if known_clean else is_dirty(ctx.env, tree)
    if dirty is not False:
        _kept(ctx, tree, "holds uncommitted work" if dirty else "cannot be read by git status")
        if not tree.kept_at:  # its expiry counts from here (`looop worktrees`)
            save(ctx, tree._replace(kept_at=int(ctx.clock.now())))
        return
    # --force: clean is already known (read above with the git dirs from our record); a plain
    # remove would run its own `git status` through the admin folder's `commondir`, which the
    # worker could have pointed at a git dir of its making (its config runs commands)
    done = git_in(ctx.env, tree.repo, "worktree", "remove", "--force", tree.path)
    if done.returncode != 0:
        ctx.events.emit(
            "warn",
            "worktree.kept",
            f"worker {wid}: could not remove its worktree {tree.path}: {why_failed(done)}",
            session=wid,
        )
        return
    save(ctx, tree._replace(removed=True, tip=tip))
    ctx.events.record("worktree_removed", id=wid, path=tree.path, branch=tree.branch)


def _let_go(ctx: Ctx, tree: Tree) -> str:
    """The tip recorded as the worker's checkout goes: where its next start must find its
    own branch. Only for a branch looop made for it; the checkout that was the branch's
    sole writer is read (its HEAD log), so nothing moved it meanwhile unseen."""
    if not tree.ours:
        return ""
    tip = branch_tip(ctx, tree)
    return tip if tip == held_tip(tree) else ""


def _release_clone(ctx: Ctx, tree: Tree, clean: bool) -> None:
    """A clone is removed whole when it holds nothing its remote lacks; else kept, said."""
    wid = tree.wid
    if os.path.lexists(tree.path):
        keep = False if clean else holds_work(ctx.env, tree)
        if keep is not False:
            _kept(ctx, tree, "holds work its remote lacks" if keep else "cannot be read by git")
            return
        remove_tree(os.fspath(tree.path))
    save(ctx, tree._replace(removed=True))
    ctx.events.record("worktree_removed", id=wid, path=tree.path, branch=tree.branch)


def _kept(ctx: Ctx, tree: Tree, why: str) -> None:
    """A checkout the reap leaves where it is, said once with how to remove it."""
    wid, what = tree.wid, "clone" if tree.clone else "worktree"
    ctx.events.emit(
        "warn",
        "worktree.kept",
        f"worker {wid}: kept its {what} {tree.path} (branch {tree.branch}): it {why} — see it "
        f"with `looop worker diff {wid}`, remove it with {_removal(tree)}",
        session=wid,
    )
    ctx.events.record("worktree_kept", id=wid, path=tree.path, branch=tree.branch)


def end_generation(ctx: Ctx, wid: str, clean: Tree | None = None) -> None:
    """A reused id must not inherit the last worker's verify result or undelivered steering.
    `clean`: its worktree as worktree.leftover just found it (clean)."""
    provenance.forget(ctx.paths, provenance.VERIFY, wid)  # first: its command goes next
    for name in (f"{wid}.cmd", f"{wid}.json"):
        store.remove(ctx.paths.verify / name)
    store.remove(ctx.paths.sandbox / wid / SANDBOX_SETTINGS)  # sandboxed() reads it
    store.remove(ctx.paths.data / "resume" / f"{wid}.json")  # its conversation: workers/resume
    if os.path.exists(ctx.paths.worktrees / f"{wid}.json"):
        release(ctx, wid, clean)  # removed, its branch kept; a dirty one is kept and said
    tells = ctx.paths.tells
    if tells.is_dir():
        for t in tells.glob(f"{wid}-*.json"):
            store.remove(t)
