"""A worker in its own `git worktree`: DATA/worktrees/<id> on its own branch (default
`looop/<id>`), made when the worker starts and removed when its session is reaped — its branch
kept, and a dirty worktree (uncommitted changes or untracked files) never removed: it stays,
and the event says where it is and how to remove it.

What the worker's worktree is lives in DATA/worktrees/<id>.json (repo, branch, base commit,
paths), written before `git worktree add` so a crash in between still leaves a record.

On an SSH host (remote/ssh/satellite.py, in the satellite's data dir) a worker may instead
get a clone of a URL at the same place, on its own branch: the same record (with `origin`,
the URL), the same `worker diff` and dirtiness; removed only when it holds nothing
uncommitted and nothing its remote lacks, since a clone's commits live nowhere else."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from looop.core import store
from looop.core.context import Ctx
from looop.core.errors import CorruptState, LooopError
from looop.core.pool import Pool, Run
from looop.core.proc import Tail, spawn
from looop.core.srt import expand, listdir
from looop.workers.rules import last_rule

GIT_TIMEOUT_S = 30.0
CLONE_TIMEOUT_S = 600.0  # a whole clone over the network
STATUS_TIMEOUT_S = 5.0  # sys-sessions: a stuck git must not hold the beat
STATUS_GRACE_S = 0.5  # how long a finished `git status` may leave its pipes held open
STATUS_KEEP = 4096  # bytes of `git status` kept: only whether it printed anything matters


class WorktreeError(LooopError):
    pass


@dataclass(frozen=True)
class Tree:
    wid: str
    repo: str  # the main repo's top folder
    branch: str
    base: str  # the commit the branch stood on when the worker started
    path: str  # the worktree
    common: str  # the main repo's git dir (objects, refs)
    gitdir: str  # the worktree's own admin folder in the main repo (HEAD, index, logs)
    created: bool = False  # this start made the branch (it was not there before)
    removed: bool = False  # the worktree is gone; the branch and this record stay
    origin: str = ""  # a clone's URL ("": a worktree of the repo at `repo`)

    @property
    def clone(self) -> bool:
        """A clone of its own (repo, common and gitdir all inside `path`), not a worktree."""
        return bool(self.origin)


@dataclass(frozen=True)
class Plan:
    wid: str
    repo: str
    common: str
    branch: str
    exists: bool  # check out this existing branch rather than make it
    base: str  # the commit the worktree starts from (the branch's tip, else HEAD)


def root(ctx: Ctx) -> Path:
    return ctx.paths.worktrees


def tree_path(ctx: Ctx, wid: str) -> str:
    return str(root(ctx) / wid)


def _record(ctx: Ctx, wid: str) -> Path:
    return root(ctx) / f"{wid}.json"


def default_branch(wid: str) -> str:
    return f"looop/{wid}"


# Set on every git looop runs in a worker's tree (command-line config outranks every file the
# worker could write): no program git would start on its own — fsmonitor, hooks, pager,
# editors, askpass, ssh, credential helpers, external diff, signing —, no nested repo entered,
# no fetch of any kind (a partial clone's lazy fetch included), no gc or maintenance.
_HARDEN = (
    ("core.fsmonitor", "false"),
    ("core.useBuiltinFSMonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.pager", "cat"),
    ("core.editor", ":"),
    ("sequence.editor", ":"),
    ("core.askPass", ""),
    ("core.sshCommand", ""),
    ("core.gitProxy", ""),
    ("core.alternateRefsCommand", ""),
    ("credential.helper", ""),  # empty resets the list
    ("diff.external", ""),
    ("diff.submodule", "short"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("protocol.allow", "never"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("gpg.program", ""),
    ("gpg.ssh.program", ""),
    ("gpg.x509.program", ""),
    ("log.showSignature", "false"),
    ("core.untrackedCache", "false"),
)
# the part of it safe for git in the user's own repo with the user's own config (a clone
# needs its transports and credentials): nothing started on its own, no nested repo entered
_HARDEN_REPO = tuple(
    kv
    for kv in _HARDEN
    if kv[0]
    in {
        "core.fsmonitor",
        "core.useBuiltinFSMonitor",
        "core.hooksPath",
        "core.pager",
        "submodule.recurse",
        "status.submoduleSummary",
        "gc.auto",
        "maintenance.auto",
    }
)
# flags for every diff looop runs: no external diff or textconv program, a gitlink shown as
# its commit (never a nested repo's log); a diff of the worktree never reads a nested repo
DIFF_FLAGS = ("--no-ext-diff", "--no-textconv", "--submodule=short")
_NO_NESTED = "--ignore-submodules=all"
# a protocol no transport has: GIT_ALLOW_PROTOCOL outranks every protocol.* setting
_NO_PROTOCOL = "looop-none"


def _with_config(out: dict[str, str], pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Config as git's own GIT_CONFIG_COUNT/KEY/VALUE (keys and values never re-parsed)."""
    for i, (k, v) in enumerate(pairs):
        out[f"GIT_CONFIG_KEY_{i}"] = k
        out[f"GIT_CONFIG_VALUE_{i}"] = v
    out["GIT_CONFIG_COUNT"] = str(len(pairs))
    return out


def git_env(env: Mapping[str, str], drivers: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The env git runs with in the user's own repo: never prompting, never paging, messages
    in English, none of the user's GIT_* variables, nothing it would start on its own."""
    out = {k: v for k, v in env.items() if not k.startswith("GIT_")}
    out.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat", PAGER="cat")
    return _with_config(out, [*_HARDEN_REPO, *drivers])


def _bare_tree_env(env: Mapping[str, str], tree: Tree) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not k.startswith("GIT_")}
    out.update(
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        GIT_PAGER="cat",
        PAGER="cat",
        # no config but the repo's own: not the system's nor the user's (they may name
        # programs, and the user's may be a filter for whatever attributes a worker wrote)
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ATTR_NOSYSTEM="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_OPTIONAL_LOCKS="0",
        GIT_ALLOW_PROTOCOL=_NO_PROTOCOL,
        GIT_PROTOCOL_FROM_USER="0",
        # the git dirs from our record, never from the worktree's `.git` file or its admin
        # folder's `commondir` (the worker can write both)
        GIT_DIR=tree.gitdir,
        GIT_COMMON_DIR=tree.common,
        GIT_WORK_TREE=tree.path,
    )
    return out


def neutralised(names: Sequence[str]) -> list[tuple[str, str]]:
    """Config that empties every filter driver and forbids every protocol the names (git's
    own `config --name-only`) define: a worker's `.gitattributes` can name any driver."""
    out: list[tuple[str, str]] = []
    for name in names:
        section, _, rest = name.partition(".")
        sub, _, var = rest.rpartition(".")
        section, var = section.lower(), var.lower()
        if not sub:
            continue
        if section == "filter" and var in ("clean", "smudge", "process", "required"):
            out.append((name, "false" if var == "required" else ""))
        elif section == "protocol" and var == "allow":
            out.append((name, "never"))
    return out


def _names(env: Mapping[str, str], cwd: str, timeout: float) -> list[str]:
    """Every config key git sees with this env (it reads config, runs nothing)."""
    done = _run(
        ["git", "--no-pager", "-C", cwd, "config", "-z", "--name-only", "--list"],
        env,
        timeout,
        "config",
    )
    if done.returncode != 0:
        raise WorktreeError(f"git config in {cwd}: {_why(done)}")
    return sorted({n for n in done.stdout.split("\0") if n})


def tree_env(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> dict[str, str]:
    """git on the host inside a worker's worktree: the git dirs from our record, no config
    but the repo's own, every program git could start switched off on its command line (the
    only config that outranks the repo's: a clone's own `.git/config` is the worker's to
    write), every filter driver that config defines emptied, no transport at all."""
    bare = _with_config(_bare_tree_env(env, tree), _HARDEN)
    drivers = neutralised(_names(bare, tree.path, timeout))
    return _with_config(_bare_tree_env(env, tree), [*_HARDEN, *drivers])


def _run(
    argv: list[str], env: Mapping[str, str], timeout: float, what: str
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,  # git (or its ssh) never waits for an answer
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise WorktreeError("git is not on PATH — install git to give a worker a repo") from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(f"git {what} in {argv[3]} took over {timeout:g}s") from None


def _git(
    env: Mapping[str, str],
    cwd: str,
    *args: str,
    timeout: float = GIT_TIMEOUT_S,
    tree: Tree | None = None,
    drivers: Sequence[tuple[str, str]] = (),
) -> subprocess.CompletedProcess[str]:
    """git in the user's repo (`drivers`: config to add), or in a worker's `tree` hardened."""
    full = tree_env(env, tree, timeout) if tree is not None else git_env(env, drivers)
    return _run(["git", "--no-pager", "-C", cwd, *args], full, timeout, args[0])


def _why(done: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
    return lines[-1].removeprefix("fatal: ") if lines else f"git exited {done.returncode}"


def read_gitdir(path: str) -> str | None:
    """The admin folder a worktree's `.git` file names, or None."""
    try:
        with open(os.path.join(path, ".git"), encoding="utf-8") as f:
            first = f.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    got = first[len("gitdir:") :].strip()
    return os.path.normpath(os.path.join(path, got))


def _resolve_repo(repo: str, env: Mapping[str, str]) -> str:

    got = expand(repo, env.get("HOME"))
    if got is None:
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
    done = _git(env, cwd, "check-ref-format", "--branch", branch)
    if done.returncode != 0 or done.stdout.strip() != branch:
        raise WorktreeError(
            f"branch '{branch}' is not a valid branch name (git check-ref-format) — pick another"
        )


def checked_out(env: Mapping[str, str], repo: str) -> dict[str, str]:
    """branch name -> the worktree it is checked out in."""
    done = _git(env, repo, "worktree", "list", "--porcelain")
    out: dict[str, str] = {}
    where = ""
    for line in done.stdout.splitlines():
        if line.startswith("worktree "):
            where = line[len("worktree ") :]
        elif line.startswith("branch refs/heads/"):
            out[line[len("branch refs/heads/") :]] = where
    return out


def plan(ctx: Ctx, wid: str, repo: str, branch: str | None) -> Plan:
    """Check everything a worktree needs without changing anything; one line when it cannot."""
    env = ctx.env
    where = _resolve_repo(repo, env)
    if not os.path.exists(where):
        raise WorktreeError(f"repo {where} does not exist — give the path of a git repository")
    if not os.path.isdir(where):
        raise WorktreeError(f"repo {where} is not a folder — give the path of a git repository")
    # one call: rev-parse answers in order and stops at --show-toplevel in a bare repo
    got = _git(
        env, where, "rev-parse", "--is-bare-repository", "--git-common-dir", "--show-toplevel"
    )
    lines = got.stdout.splitlines()
    if lines[:1] == ["true"]:
        raise WorktreeError(f"repo {where} is a bare repository — give a clone with a working tree")
    if got.returncode != 0 or not lines:
        raise WorktreeError(f"repo {where} is not a git repository ({_why(got)})")
    if len(lines) < 3:
        raise WorktreeError(f"repo {where}: git did not name its top folder")
    top_dir = lines[2]
    common = os.path.normpath(os.path.join(where, lines[1]))
    name = branch if branch is not None else default_branch(wid)
    check_branch(env, top_dir, name)
    tip = _git(env, top_dir, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}^{{commit}}")
    exists = tip.returncode == 0
    head = tip if exists else _git(env, top_dir, "rev-parse", "--verify", "--quiet", "HEAD")
    if head.returncode != 0:
        raise WorktreeError(
            f"repo {top_dir} has no commits yet, so there is nothing to branch from — "
            f"commit once first (git -C {_q(top_dir)} commit --allow-empty -m start)"
        )
    if exists:
        busy = checked_out(env, top_dir).get(name)
        mine = tree_path(ctx, wid)
        if busy is not None and os.path.normpath(busy) != os.path.normpath(mine):
            raise WorktreeError(
                f"branch '{name}' is checked out at {busy} — give the worker another "
                "--branch, or switch that checkout to another branch first"
            )
    return Plan(wid, top_dir, common, name, exists, head.stdout.strip())


def _q(path: str) -> str:

    return shlex.quote(path)


def load(ctx: Ctx, wid: str) -> Tree | None:
    """The worker's worktree record, or None (never had one, or it is unreadable)."""
    try:
        raw = store.read_json_object(_record(ctx, wid))
    except (CorruptState, OSError):
        return None
    return _from_record(raw) if raw else None


def _from_record(raw: Mapping[str, Any]) -> Tree | None:
    try:
        return Tree(**{k: raw[k] for k in Tree.__dataclass_fields__ if k in raw})
    except TypeError:
        return None


def _save(ctx: Ctx, tree: Tree) -> None:
    store.atomic_write(_record(ctx, tree.wid), json.dumps(asdict(tree), indent=2) + "\n")


# `git status` asking only whether a worktree holds anything uncommitted: an untracked
# folder is one line (not one per file inside it), the same yes/no for less work. A nested
# repo is never entered (its config is the worker's): an untracked one is one line, a staged
# gitlink alone reads as clean, and removal refuses a worktree holding one (git's own check)
_STATUS = (
    "--no-optional-locks",  # never take the index lock the worker's own git may want
    "status",
    "--porcelain",
    "--untracked-files=normal",
    "--ignore-submodules=all",
)


def is_dirty(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> bool | None:
    """True when the worktree holds uncommitted changes, untracked files or a nested repo at
    a gitlink (which status never enters, and removal would take whole); None: unknown."""
    try:
        full = tree_env(env, tree, timeout)
        head = ["git", "--no-pager", "-C", tree.path]
        done = _run([*head, *_STATUS], full, timeout, "status")
        if done.returncode != 0:
            return None
        if done.stdout.strip():
            return True
        staged = _run([*head, "ls-files", "-z", "--stage"], full, timeout, "ls-files")
    except WorktreeError:
        return None
    if staged.returncode != 0:
        return None
    for entry in staged.stdout.split("\0"):
        meta, _, name = entry.partition("\t")
        if meta.startswith("160000 ") and os.path.lexists(os.path.join(tree.path, name, ".git")):
            return True
    return False


def leftover(ctx: Ctx, wid: str) -> Tree | None:
    """Refuse to start over a worktree this id left that still holds work; a clean one is
    returned, for the reap that follows to remove without asking git again (release)."""
    path = tree_path(ctx, wid)
    if not os.path.lexists(path):
        return None
    tree = load(ctx, wid)
    if tree is None or tree.removed or os.path.normpath(tree.path) != os.path.normpath(path):
        raise WorktreeError(
            f"worker {wid}: {path} is in the way and looop did not make it — move it "
            "aside or remove it, then start the worker again"
        )
    if tree.clone:
        if holds_work(ctx.env, tree) is not False:
            raise WorktreeError(
                f"worker {wid}: its last clone {path} holds work its remote lacks "
                f"(uncommitted, or commits not pushed) — push it, or remove it (rm -rf "
                f"{_q(path)}), then start the worker again"
            )
        return tree
    if is_dirty(ctx.env, tree) is not False:
        raise WorktreeError(
            f"worker {wid}: its last worktree {path} holds uncommitted work — commit it "
            f"there, or remove it (git -C {_q(path)} worktree remove --force {_q(path)}), "
            "then start the worker again"
        )
    return tree


def create(ctx: Ctx, p: Plan) -> Tree:
    """`git worktree add` at DATA/worktrees/<id>; the record is written first."""
    env = ctx.env
    path = tree_path(ctx, p.wid)
    os.makedirs(root(ctx), exist_ok=True)
    base = p.base
    guess = os.path.join(p.common, "worktrees", p.wid)
    tree = Tree(p.wid, p.repo, p.branch, base, path, p.common, guess, created=not p.exists)
    _save(ctx, tree)
    # the checkout may be a branch a worker wrote: its `.gitattributes` may name any filter
    # the user's config defines, so none runs (nor a hook)
    drivers = neutralised(_names(git_env(env), p.repo, GIT_TIMEOUT_S))
    if p.exists:
        done = _git(env, p.repo, "worktree", "add", path, p.branch, drivers=drivers)
    else:
        done = _git(env, p.repo, "worktree", "add", "-b", p.branch, path, base, drivers=drivers)
    gitdir = read_gitdir(path) if done.returncode == 0 else None
    if gitdir is None:
        store.remove(_record(ctx, p.wid))
        raise WorktreeError(f"worker {p.wid}: git worktree add failed: {_why(done)}")
    tree = replace(tree, gitdir=gitdir)  # git names the folder (w1, or w11 when w1 is taken)
    _save(ctx, tree)
    return tree


@dataclass(frozen=True)
class ClonePlan:
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
    """`git clone` of the URL at DATA/worktrees/<id>, then the worker's branch checked out:
    the remote's branch of that name when it has one, else a new one from its default
    branch. The record is written first; a failure takes back everything it made."""
    env = ctx.env
    path = tree_path(ctx, p.wid)
    os.makedirs(root(ctx), exist_ok=True)
    git = os.path.join(path, ".git")
    tree = Tree(p.wid, path, p.branch, "", path, git, git, created=True, origin=p.url)
    _save(ctx, tree)
    try:
        here = str(root(ctx))
        drivers = neutralised(_names(git_env(env), here, GIT_TIMEOUT_S))  # as create's
        done = _git(
            env, here, "clone", "-q", "--", p.url, path, timeout=CLONE_TIMEOUT_S, drivers=drivers
        )
        if done.returncode != 0:
            raise WorktreeError(f"worker {p.wid}: git clone {p.url} failed: {_why(done)}")
        head = _git(env, path, "rev-parse", "--verify", "--quiet", "HEAD", tree=tree)
        if head.returncode != 0:
            raise WorktreeError(
                f"worker {p.wid}: {p.url} has no commits yet, so there is nothing to branch "
                "from — push a first commit there"
            )
        local = _git(env, path, "rev-parse", "--verify", "--quiet", f"refs/heads/{p.branch}")
        theirs = f"refs/remotes/origin/{p.branch}"
        if local.returncode == 0:
            got = _git(env, path, "checkout", "-q", p.branch, "--", tree=tree)
        elif _git(env, path, "rev-parse", "--verify", "--quiet", theirs).returncode == 0:
            got = _git(env, path, "checkout", "-q", "-b", p.branch, "--track", theirs, tree=tree)
        else:
            got = _git(env, path, "checkout", "-q", "-b", p.branch, tree=tree)
        if got.returncode != 0:
            raise WorktreeError(f"worker {p.wid}: cannot check out {p.branch}: {_why(got)}")
        base = _git(env, path, "rev-parse", "--verify", "--quiet", "HEAD", tree=tree)
    except WorktreeError:
        undo(ctx, tree)
        raise
    tree = replace(tree, base=base.stdout.strip())
    _save(ctx, tree)
    return tree


def unpushed(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> bool | None:
    """True when a clone holds commits (on a branch, or stashed) that none of its
    remote-tracking branches has: removing it would lose them. None: unknown."""
    try:
        done = _git(
            env,
            tree.path,
            "rev-list",
            "-n",
            "1",
            "--branches",
            "--glob=refs/stas[h]",  # refs/stash itself (a glob without a wildcard means dir/*)
            "--not",
            "--remotes",
            timeout=timeout,
            tree=tree,
        )
    except WorktreeError:
        return None
    if done.returncode != 0:
        return None
    return bool(done.stdout.strip())


def holds_work(env: Mapping[str, str], tree: Tree) -> bool | None:
    """Whether removing the checkout would lose anything: uncommitted work, and for a clone
    also commits its remote lacks (None: unknown)."""
    dirty = is_dirty(env, tree)
    if dirty is not False or not tree.clone:
        return dirty
    return unpushed(env, tree)


def undo(ctx: Ctx, tree: Tree) -> None:
    """The start failed after the worktree was made: take it back (and a branch it made)."""
    env = ctx.env
    if tree.clone:
        shutil.rmtree(tree.path, ignore_errors=True)
        store.remove(_record(ctx, tree.wid))
        return
    _git(env, tree.repo, "worktree", "remove", "--force", tree.path)
    if tree.created:
        tip = _git(env, tree.repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{tree.branch}")
        if tip.stdout.strip() == tree.base:  # nothing was committed on it
            _git(env, tree.repo, "branch", "-D", tree.branch)
    store.remove(_record(ctx, tree.wid))


def release(ctx: Ctx, wid: str, clean: Tree | None = None) -> None:
    """The worker's session is reaped: remove its worktree, keep its branch. A dirty (or
    unreadable) worktree is kept, and said once, with where it is and how to remove it.
    `clean`: the record leftover just found clean (neither read nor asked again)."""
    tree = clean if clean is not None else load(ctx, wid)
    if tree is None or tree.removed:
        return
    if tree.clone:
        _release_clone(ctx, tree, clean is not None)
        return
    if not os.path.lexists(tree.path):
        _git(ctx.env, tree.repo, "worktree", "prune")
        _save(ctx, replace(tree, removed=True))
        return
    dirty = False if clean is not None else is_dirty(ctx.env, tree)
    if dirty is not False:
        why = "holds uncommitted work" if dirty else "cannot be read by git status"
        ctx.events.emit(
            "warn",
            "worktree.kept",
            f"worker {wid}: kept its worktree {tree.path} (branch {tree.branch}): it {why} — "
            f"see it with `looop worker diff {wid}`, remove it with "
            f"git -C {_q(tree.repo)} worktree remove --force {_q(tree.path)}",
            session=wid,
        )
        ctx.events.record("worktree_kept", id=wid, path=tree.path, branch=tree.branch)
        return
    # --force: clean is already known (read above with the git dirs from our record); a plain
    # remove would run its own `git status` through the admin folder's `commondir`, which the
    # worker could have pointed at a git dir of its making (its config runs commands)
    done = _git(ctx.env, tree.repo, "worktree", "remove", "--force", tree.path)
    if done.returncode != 0:
        ctx.events.emit(
            "warn",
            "worktree.kept",
            f"worker {wid}: could not remove its worktree {tree.path}: {_why(done)}",
            session=wid,
        )
        return
    _save(ctx, replace(tree, removed=True))
    ctx.events.record("worktree_removed", id=wid, path=tree.path, branch=tree.branch)


def _release_clone(ctx: Ctx, tree: Tree, clean: bool) -> None:
    """A clone is removed whole when it holds nothing its remote lacks; else kept, said."""
    wid = tree.wid
    if os.path.lexists(tree.path):
        keep = False if clean else holds_work(ctx.env, tree)
        if keep is not False:
            why = "holds work its remote lacks" if keep else "cannot be read by git"
            ctx.events.emit(
                "warn",
                "worktree.kept",
                f"worker {wid}: kept its clone {tree.path} (branch {tree.branch}): it {why} — "
                f"see it with `looop worker diff {wid}`, remove it with rm -rf {_q(tree.path)}",
                session=wid,
            )
            ctx.events.record("worktree_kept", id=wid, path=tree.path, branch=tree.branch)
            return
        shutil.rmtree(tree.path, ignore_errors=True)
    _save(ctx, replace(tree, removed=True))
    ctx.events.record("worktree_removed", id=wid, path=tree.path, branch=tree.branch)


def diff_runs(
    ctx: Ctx, wid: str, extra: tuple[str, ...] = ()
) -> list[tuple[list[str], dict[str, str]]]:
    """The git commands (argv, env) that show a worker's changes: everything since its base
    (commits on its branch and uncommitted edits), then each untracked file as a new file.
    `extra`: options for git diff (--stat, --color=always, …)."""
    tree = load(ctx, wid)
    if tree is None:
        raise WorktreeError(
            f"worker {wid} has no worktree — only a worker started with --repo has one"
        )
    head = ["git", "--no-pager"]
    flags = (*DIFF_FLAGS, *extra)
    if tree.clone and (tree.removed or not os.path.isdir(tree.path)):
        raise WorktreeError(
            f"worker {wid}'s clone is gone (removed with nothing its remote lacked): its "
            f"branch {tree.branch} is at {tree.origin} if it was pushed"
        )
    if tree.removed or not os.path.isdir(tree.path):
        # the worktree went with the session; its branch holds what was committed
        argv = [
            *head,
            "-C",
            tree.repo,
            "diff",
            *flags,
            tree.base,
            f"refs/heads/{tree.branch}",
            "--",
        ]
        return [(argv, git_env(ctx.env))]
    env = tree_env(ctx.env, tree)
    out = [([*head, "-C", tree.path, "diff", *flags, _NO_NESTED, tree.base, "--"], env)]
    links = gitlinks(ctx.env, tree)
    if links:
        # the nested repos' recorded commits, read from the index alone (never the repos)
        cached = ("--cached", "--ignore-submodules=none")
        paths = [f":(literal){name}" for name in links]
        argv = [*head, "-C", tree.path, "diff", *flags, *cached, tree.base, "--", *paths]
        out.append((argv, env))
    done = _git(ctx.env, tree.path, "ls-files", "--others", "--exclude-standard", "-z", tree=tree)
    # a name ending in / is a nested repo, shown by status, never read
    for name in sorted(n for n in done.stdout.split("\0") if n and not n.endswith("/")):
        argv = [*head, "-C", tree.path, "diff", *flags, "--no-index", "--", "/dev/null", name]
        out.append((argv, env))
    return out


def gitlinks(env: Mapping[str, str], tree: Tree) -> list[str]:
    """Paths whose gitlink (a nested repo's commit) differs between the worker's base and its
    index: `--ignore-submodules=all` hides them from the diff, so they are shown apart."""
    done = _git(
        env,
        tree.path,
        "diff-index",
        "--cached",
        "-z",
        "--no-renames",
        "--ignore-submodules=none",
        tree.base,
        "--",
        tree=tree,
    )
    out: list[str] = []
    fields = done.stdout.split("\0")
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):
        modes = meta.lstrip(":").split(" ")[:2]
        if "160000" in modes and name:
            out.append(name)
    return out


def sandbox_write(tree: Tree) -> tuple[list[str], list[str]]:
    """What a sandboxed worker writes for git to work from inside, and what stays locked.

    Writable: the worktree; its admin folder (HEAD, index, its logs); the objects folder (a
    commit adds objects); the folder of its branch's ref and of that ref's log (git writes
    `<ref>.lock` beside the ref and renames it). Locked: the packs and objects/info (the
    repo's packed history; no alternates planted) and every other branch ref in that folder.
    Also locked: the worktree's `.git` file, the admin folder's `commondir` and `gitdir`
    (where the git dirs are) and its `config.worktree`. The main repo's own HEAD, index,
    config, hooks and working tree stay read-only."""

    common = tree.common
    objects = os.path.join(common, "objects")
    ref = os.path.join(common, "refs", "heads", *tree.branch.split("/"))
    log = os.path.join(common, "logs", "refs", "heads", *tree.branch.split("/"))
    ref_dir, log_dir = os.path.dirname(ref), os.path.dirname(log)
    for d in (ref_dir, log_dir):
        os.makedirs(d, exist_ok=True)
    write = [tree.path, tree.gitdir, objects, ref_dir, log_dir]
    locked = [os.path.join(objects, "pack"), os.path.join(objects, "info")]
    # the files that say where the git dirs are, and the per-worktree config: a worker that
    # rewrote them would have git run by a human in its worktree read a config of its making
    # (whose settings run commands). Locked only what exists: make the config, empty.
    own_config = os.path.join(tree.gitdir, "config.worktree")
    if not os.path.lexists(own_config):
        with open(own_config, "a", encoding="utf-8"):
            pass
    locked += srt_guarded(tree.path)
    locked += [
        os.path.join(tree.path, ".git"),
        os.path.join(tree.gitdir, "commondir"),
        os.path.join(tree.gitdir, "gitdir"),
        own_config,
    ]
    for d, mine in ((ref_dir, ref), (log_dir, log)):
        for name in listdir(d):
            got = os.path.join(d, name)
            if got != mine and not name.endswith(".lock"):
                locked.append(got)
    return write, [p for p in locked if os.path.lexists(p)]


# srt's own write protection (0.0.83's "mandatory denies"): names whose contents run code in
# a shell, an editor or an agent CLI opened there, and a nested repo's hooks and config.
SRT_FILES = frozenset(
    {
        ".gitconfig",
        ".gitmodules",
        ".bashrc",
        ".bash_profile",
        ".zshrc",
        ".zprofile",
        ".profile",
        ".ripgreprc",
        ".mcp.json",
    }
)
SRT_DIRS = frozenset({".vscode", ".idea"})
SRT_INNER = {".claude": ("commands", "agents"), ".git": ("hooks", "config")}
SRT_DEPTH = 3  # srt's default search depth below its working directory


def srt_guarded(top: str) -> list[str]:
    """What srt itself would keep read-only in a worktree it started in, of what exists there.
    A sandboxed worker's srt starts elsewhere, so that its placeholders for the names missing
    never land in the worktree; these come back as looop's own denies. Counted as srt counts:
    a named file down to SRT_DEPTH - 1 folders deep, a named folder (or what is inside
    .claude, or a nested .git) one less; case ignored, no symlink followed, node_modules
    skipped."""
    out: list[str] = []

    def walk(folder: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            low = e.name.lower()
            if low in SRT_FILES:
                out.append(e.path)
            elif depth > SRT_DEPTH - 2:
                continue  # only files this deep
            elif low in SRT_DIRS:
                out.append(e.path)
            elif low in SRT_INNER:
                inside = (os.path.join(e.path, n) for n in SRT_INNER[low])
                out.extend(p for p in inside if os.path.lexists(p))
            elif low != "node_modules" and _is_dir(e):
                walk(e.path, depth + 1)

    walk(top, 0)
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def with_note(contract: str, tree: Tree) -> str:
    """The contract with where the worker's code work goes, as its last rule."""
    if tree.clone:
        note = (
            f"**Your clone**: you start in your own clone of {tree.origin} ({tree.path}), on "
            f"branch `{tree.branch}`. Do the code work there and commit on that branch; make "
            "no other checkout, and never push, merge or rebase without a yes through `ask`. "
            'The data dir is "$LOOOP_DATA_DIR": deliverables go to "$LOOOP_REPORTS_DIR" (its '
            "reports/, not one here)."
        )
    else:
        note = (
            f"**Your worktree**: you start in your own git worktree of {tree.repo} "
            f"({tree.path}), on branch `{tree.branch}`. Do the code work there and commit on "
            "that branch; make no other worktree, and never push, merge or rebase other "
            'branches without a yes through `ask`. The data dir is "$LOOOP_DATA_DIR": '
            'deliverables go to "$LOOOP_REPORTS_DIR" (its reports/, not one here).'
        )
    # the two rules this one replaces: the data dir is no longer where it starts, and it
    # makes no worktree of its own
    contract = contract.replace(
        "the data dir (your starting directory)", 'the data dir ("$LOOOP_DATA_DIR")'
    )
    start = contract.find("- **Code work**")
    if start >= 0:
        end = contract.find("\n- ", start)
        contract = contract[:start] + contract[end + 1 :] if end >= 0 else contract
    return last_rule(contract, note)


def sensed(ctx: Ctx, records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, object]]:
    """For sys-sessions: each worker's branch and whether its worktree holds uncommitted
    work (None: git could not tell), from the worktree records the fleet already read
    (fleet.tree_records). The `git status` runs go at once, each with its own deadline."""
    out: dict[str, dict[str, object]] = {}
    live: list[Tree] = []
    for wid, raw in records.items():
        tree = _from_record(raw)
        if tree is None:
            continue
        out[wid] = {"branch": tree.branch}
        if not tree.removed and os.path.isdir(tree.path):
            live.append(tree)
    for wid, dirty in _dirty_all(ctx, live, STATUS_TIMEOUT_S).items():
        out[wid]["uncommitted"] = dirty
    return out


def _dirty_all(ctx: Ctx, trees: list[Tree], timeout: float) -> dict[str, bool | None]:
    """is_dirty for many worktrees at once, in one Pool: a run past its deadline has its
    whole process group killed and reads as unknown (None)."""

    got: dict[str, bool | None] = {t.wid: None for t in trees}
    if not trees:
        return got
    pool = Pool(ctx.clock, STATUS_GRACE_S)
    try:
        for tree in trees:
            started = ctx.clock.monotonic()
            try:
                env = tree_env(ctx.env, tree, timeout)
                argv = ["git", "--no-pager", "-C", tree.path, *_STATUS]
                proc = spawn(argv, cwd=ctx.paths.data, env=env)
            except (OSError, WorktreeError):  # git missing, or its config unreadable: unknown
                continue
            out, err = Tail(STATUS_KEEP), Tail(STATUS_KEEP)
            pool.add(Run(proc, started + timeout, out, err, label=tree.wid, started=started))
        for run in pool.finished():
            if run.exit().ok:
                got[run.label] = bool(run.out.data().strip())
    finally:
        pool.abandon()
    return got
