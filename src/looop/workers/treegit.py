"""git as looop runs it for a worker's checkout: in the user's own repo with nothing git would
start on its own, or inside a worker's tree with the git dirs from our record, no config but
the repo's own, every program and filter driver switched off and no transport at all; one
run with its timeout and its one-line failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from looop.workers.treerecord import Tree, WorktreeError, clear_strays

GIT_TIMEOUT_S = 30.0

# Set on every git looop runs, in the user's own repo with the user's own config too (a clone
# needs its transports and credentials): nothing started on its own, no nested repo entered
_HARDEN_REPO = (
    ("core.fsmonitor", "false"),
    ("core.useBuiltinFSMonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.pager", "cat"),
    ("submodule.recurse", "false"),
    ("status.submoduleSummary", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)
# and in a worker's tree (command-line config outranks every file the worker could write): no
# program git would start on its own — editors, askpass, ssh, credential helpers, external
# diff, signing —, no fetch of any kind (a partial clone's lazy fetch included)
_HARDEN = (
    *_HARDEN_REPO,
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
    ("fetch.recurseSubmodules", "false"),
    ("protocol.allow", "never"),
    ("gpg.program", ""),
    ("gpg.ssh.program", ""),
    ("gpg.x509.program", ""),
    ("log.showSignature", "false"),
    ("core.untrackedCache", "false"),
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
