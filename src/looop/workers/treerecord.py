"""The record of a worker's checkout: DATA/worktrees/<id>.json says what it is (repo, branch,
base commit, its git dirs, a clone's URL), written before git makes anything so a crash in
between still leaves a record; read back fail-closed (an unreadable one is no record). And git
as looop runs it for a checkout: in the user's own repo with nothing git would start on its
own, or inside a worker's tree with the git dirs from our record, no config but the repo's own,
every program and filter driver switched off and no transport at all; one run with its timeout
and its one-line failure."""

import contextlib
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.home.errors import CorruptState, LooopError


class WorktreeError(LooopError):
    pass


class Strays(WorktreeError):
    """What a box left in its git folders that git on the host would hang on: removed."""


class Tree(NamedTuple):
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
    owned: bool = False  # looop made this branch for this worker (at this start or before)
    tip: str = ""  # the branch's tip when looop last let go of it ("": held, or never)
    kept_at: int = 0  # when its reaped worker's session left it dirty (0: never kept)
    warned: bool = False  # its expiry was said (worktree.expiring)
    # a worker of several repos has one checkout of each in its workspace <checkouts>/<id>/:
    # `part` names this one's folder there; the first repo's record (worktrees/<id>.json)
    # lists every part in order, the others are worktrees/<id>.parts/<part>.json
    part: str = ""
    parts: tuple[str, ...] = ()
    setup_left: tuple[str, ...] = ()  # untracked before the agent's first turn: its setup's

    @property
    def clone(self) -> bool:
        """A clone of its own (repo, common and gitdir all inside `path`), not a worktree."""
        return bool(self.origin)

    @property
    def ours(self) -> bool:
        """Its branch is one looop made for this worker (a record from before `owned`
        was kept says so by `created`)."""
        return self.owned or self.created


_HEAD_LOG_TAIL = 4096  # the last entry is all that is read
_STRAYS_MAX = 64  # entries of a folder looked at: git keeps about a dozen in an admin folder


def clear_strays(tree: Tree) -> None:
    """Before the host reads a worker's git folders: what its box could make there that is
    not a regular file or folder (a FIFO or device git would open and wait on forever, a
    link) is removed, and said in one line (Strays). Its admin folder and its logs/, the
    branch's ref and that ref's log; bounded, no link followed."""
    heads = ("refs", "heads", *tree.branch.split("/"))
    spots = [os.path.join(tree.common, *heads), os.path.join(tree.common, "logs", *heads)]
    gone: list[str] = []
    for folder in (tree.gitdir, os.path.join(tree.gitdir, "logs")):
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(folder).st_mode):  # a link there was removed just now
                with os.scandir(folder) as it:
                    spots += [e.path for _, e in zip(range(_STRAYS_MAX), it, strict=False)]
        for path in spots:
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    os.unlink(path)
                    gone.append(path)
        spots = []
    head = os.path.join(tree.gitdir, "HEAD")
    if head in gone:  # the checkout back on its branch
        with contextlib.suppress(OSError):
            fd = os.open(head, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(f"ref: refs/heads/{tree.branch}\n")
    if gone:
        raise Strays(
            f"worker {tree.wid}: removed {', '.join(gone)}: not a regular file (a FIFO, device "
            "or link its box made, which git would hang on) — try again; start the worker "
            "again if its checkout no longer works"
        )


def cleared(ctx: Ctx, tree: Tree | str) -> None:
    """clear_strays said as an event, of one checkout or (a worker's id) each of its own:
    its box is gone, and git (the user's own too) must not hang on what it left."""
    first = load(ctx, tree) if isinstance(tree, str) else tree
    if first is None:
        return
    for each in parts_of(ctx, first) if isinstance(tree, str) else [first]:
        try:
            if not each.removed:
                clear_strays(each)
        except Strays as e:
            ctx.events.emit("warn", "worktree.strays", str(e), session=first.wid)


def held_tip(tree: Tree) -> str:
    """The commit the worker's own checkout last moved its HEAD to: the newest entry of its
    admin folder's HEAD log (which only that checkout writes), else the branch's base."""
    if not tree.removed:
        clear_strays(tree)
    try:
        with open(os.path.join(tree.gitdir, "logs", "HEAD"), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _HEAD_LOG_TAIL))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return tree.base
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    words = lines[-1].split() if lines else []
    return words[1] if len(words) > 1 else tree.base


def is_ours(tree: Tree | None, common: str, branch: str, tip: str) -> bool:
    """`branch`, standing at `tip`, is the one looop left for this worker: made for it, and
    where its last checkout left it (or still holds it) — not planted, nor moved by anyone
    else since."""
    if tree is None or tree.clone or not tree.ours or tree.branch != branch:
        return False
    if os.path.normpath(tree.common) != os.path.normpath(common):
        return False
    if tree.removed:
        return bool(tree.tip) and tree.tip == tip
    return held_tip(tree) == tip


def record_file(ctx: Ctx, wid: str, part: str = "") -> Path:
    """The record of the worker's checkout (`part`: one of its other repos' checkouts)."""
    return ctx.paths.worktrees / (f"{wid}.parts/{part}.json" if part else f"{wid}.json")


def file_of(ctx: Ctx, tree: Tree) -> Path:
    return record_file(ctx, tree.wid, "" if tree.parts or not tree.part else tree.part)


def load(ctx: Ctx, wid: str, part: str = "") -> Tree | None:
    """The worker's worktree record (its first repo's when it has several; `part`: another
    one's), or None (never had one, or it is unreadable)."""
    try:
        raw = store.read_json_object(record_file(ctx, wid, part))
    except (CorruptState, OSError):
        return None
    return from_record(raw) if raw else None


def parts_of(ctx: Ctx, first: Tree) -> list[Tree]:
    """The first repo's checkout and the others' (an unreadable record left out)."""
    more = (load(ctx, first.wid, p) for p in first.parts[1:])
    return [first, *(t for t in more if t is not None)]


def load_all(ctx: Ctx, wid: str) -> list[Tree]:
    """Every checkout of the worker, its first repo's first ([] without a record). A part
    whose record is unreadable is WorktreeError: a change is never shown or landed half."""
    first = load(ctx, wid)
    if first is None:
        return []
    out = [first]
    for part in first.parts[1:]:
        tree = load(ctx, wid, part)
        if tree is None:
            raise WorktreeError(
                f"worker {wid}: the record of its checkout {part} is unreadable "
                f"({record_file(ctx, wid, part)}) — look at it, or start the worker again"
            )
        out.append(tree)
    return out


def from_record(raw: Mapping[str, Any]) -> Tree | None:
    try:
        got = {k: raw[k] for k in Tree._fields if k in raw}
        parts = got.get("parts", ())
        if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
            return None
        got["parts"] = tuple(parts)
        got["setup_left"] = tuple(str(n) for n in got.get("setup_left", ()))
        return Tree(**got)
    except TypeError:
        return None


def save(ctx: Ctx, tree: Tree) -> None:
    store.atomic_write(file_of(ctx, tree), jsonio.dumps(tree._asdict(), indent=2) + "\n")


GIT_TIMEOUT_S = 30.0

# Set on every git looop runs, in the user's own repo with the user's own config too (a clone
# needs its transports and credentials): nothing started on its own, no nested repo entered
_HARDEN_REPO = (
    *[("core.fsmonitor", "false"), ("core.useBuiltinFSMonitor", "false")],
    *[("core.hooksPath", os.devnull), ("core.pager", "cat"), ("submodule.recurse", "false")],
    *[("status.submoduleSummary", "false"), ("gc.auto", "0"), ("maintenance.auto", "false")],
)
# and in a worker's tree (command-line config outranks every file the worker could write): no
# program git would start on its own — editors, askpass, ssh, credential helpers, external
# diff, signing —, no fetch of any kind (a partial clone's lazy fetch included)
_HARDEN = (
    *_HARDEN_REPO,
    *[("core.editor", ":"), ("sequence.editor", ":")],
    # empty: no program (credential.helper's empty value resets the list)
    *[(k, "") for k in ("core.askPass", "core.sshCommand", "core.gitProxy", "diff.external")],
    *[(k, "") for k in ("core.alternateRefsCommand", "credential.helper", "gpg.program")],
    *[(k, "") for k in ("gpg.ssh.program", "gpg.x509.program")],
    *[("diff.submodule", "short"), ("diff.ignoreSubmodules", "all")],
    *[("fetch.recurseSubmodules", "false"), ("protocol.allow", "never")],
    *[("log.showSignature", "false"), ("core.untrackedCache", "false")],
)
# flags for every diff looop runs: no external diff or textconv program, a gitlink shown as
# its commit (never a nested repo's log); a diff of the worktree never reads a nested repo
DIFF_FLAGS = ("--no-ext-diff", "--no-textconv", "--submodule=short")
NO_NESTED = "--ignore-submodules=all"
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
    return _with_config(_plain(env), [*_HARDEN_REPO, *drivers])


def _plain(env: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in env.items() if not k.startswith("GIT_")}
    out.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat", PAGER="cat")
    return out


def _bare_tree_env(env: Mapping[str, str], tree: Tree) -> dict[str, str]:
    out = _plain(env)
    out.update(
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


def config_names(env: Mapping[str, str], cwd: str, timeout: float) -> list[str]:
    """Every config key git sees with this env (it reads config, runs nothing)."""
    done = run_git(
        ["git", "--no-pager", "-C", cwd, "config", "-z", "--name-only", "--list"],
        env,
        timeout,
        f"git config in {cwd}",
    )
    if done.returncode != 0:
        raise WorktreeError(f"git config in {cwd}: {why_failed(done)}")
    return sorted({n for n in done.stdout.split("\0") if n})


def tree_env(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> dict[str, str]:
    """git on the host inside a worker's worktree: the git dirs from our record, no config
    but the repo's own, every program git could start switched off on its command line (the
    only config that outranks the repo's: a clone's own `.git/config` is the worker's to
    write), every filter driver that config defines emptied, no transport at all. What
    its box left there that git would hang on is removed first, and said (Strays)."""
    clear_strays(tree)
    bare = _with_config(_bare_tree_env(env, tree), _HARDEN)
    drivers = neutralised(config_names(bare, tree.path, timeout))
    return _with_config(_bare_tree_env(env, tree), [*_HARDEN, *drivers])


def run_git(
    argv: list[str],
    env: Mapping[str, str],
    timeout: float,
    what: str,
    stdin: str | None = None,
    errors: str = "strict",
) -> subprocess.CompletedProcess[str]:
    """git bounded by `timeout`; `what` ("git push in /repo") names it in the one line a
    timeout gives; `errors="replace"` reads bytes a worker wrote that are not UTF-8."""
    try:
        return subprocess.run(
            argv,
            env=env,
            input=stdin,
            # git (or its ssh) never waits for an answer: given its input, or none
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            encoding="utf-8",
            errors=errors,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise WorktreeError(
            "git is not on PATH — install git: looop works in repos with it"
        ) from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(f"{what} took over {timeout:g}s") from None


def git_in(
    env: Mapping[str, str],
    cwd: str,
    *args: str,
    timeout: float = GIT_TIMEOUT_S,
    tree: Tree | None = None,
    drivers: Sequence[tuple[str, str]] = (),
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """git in the user's repo (`drivers`: config to add), or in a worker's `tree` hardened;
    `stdin`: what git reads (else nothing)."""
    full = tree_env(env, tree, timeout) if tree is not None else git_env(env, drivers)
    argv = ["git", "--no-pager", "-C", cwd, *args]
    return run_git(argv, full, timeout, f"git {args[0]} in {cwd}", stdin)


def rev(env: Mapping[str, str], cwd: str, ref: str, tree: Tree | None = None) -> str:
    """The commit `ref` names in the repo at `cwd` ("" when it names none)."""
    got = git_in(env, cwd, "rev-parse", "--verify", "--quiet", ref, tree=tree)
    return got.stdout.strip() if got.returncode == 0 else ""


def why_failed(done: subprocess.CompletedProcess[str]) -> str:
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
