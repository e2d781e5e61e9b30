"""A landing as a pull request: the worker's branch pushed to the configured remote, then the
configured command (gh, glab, …) opens the request, each within its time limit. A PR command
that fails or hangs takes back a branch the push made, so nothing is left half-landed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from looop.act.landconfig import LandConfig, pr_argv
from looop.core.context import Ctx
from looop.home import store
from looop.home.errors import LooopError
from looop.workers import reviewgit
from looop.workers.review import summary_of
from looop.workers.treegit import git_env, run_git, why_failed
from looop.workers.treerecord import Tree

_KEEP = 64 * 1024  # bytes of the PR command's output kept


def _remote_has(ctx: Ctx, cfg: LandConfig, tree: Tree) -> bool:
    argv = ["git", "-C", tree.repo, "ls-remote", "--heads", cfg.remote, f"refs/heads/{tree.branch}"]
    done = run_git(argv, git_env(ctx.env), cfg.pr_timeout_s, "ls-remote")
    if done.returncode != 0:
        raise LooopError(
            f"the remote {cfg.remote} of {tree.repo} cannot be read: {why_failed(done)}"
        )
    return bool(done.stdout.strip())


def _push(ctx: Ctx, cfg: LandConfig, tree: Tree, spec: str) -> tuple[bool, str]:
    argv = ["git", "-C", tree.repo, "push", "--porcelain", cfg.remote, spec]
    done = run_git(argv, git_env(ctx.env), cfg.pr_timeout_s, "push")
    return done.returncode == 0, why_failed(done)


def _body(ctx: Ctx, tree: Tree, tip: str) -> tuple[str, str]:
    """The PR's title and body: the commits, then the worker's own report."""
    commits = reviewgit.commits(ctx, tree, tree.base, tip)
    title = commits[0].subject if len(commits) == 1 else f"{tree.branch} (looop worker {tree.wid})"
    lines = [f"Landed from looop worker `{tree.wid}` (branch `{tree.branch}`).", ""]
    lines += [f"- {c.sha[:12]} {c.subject}" for c in commits]
    summary, _ = summary_of(ctx, tree.wid)
    if summary:
        lines += ["", summary.rstrip()]
    return title, "\n".join(lines) + "\n"


def _run_pr(ctx: Ctx, cfg: LandConfig, argv: list[str], cwd: str) -> str:
    """The PR command's last line of output; one line when it fails or hangs."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(ctx.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its whole group is ended when it hangs
    )
    try:
        out, err = proc.communicate(timeout=cfg.pr_timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise LooopError(f"{argv[0]} took over {cfg.pr_timeout_s:g}s (land.pr_timeout_s)") from None
    said = [ln.strip() for ln in out[-_KEEP:].decode("utf-8", "replace").splitlines() if ln.strip()]
    if proc.returncode != 0:
        why = [
            ln.strip() for ln in err[-_KEEP:].decode("utf-8", "replace").splitlines() if ln.strip()
        ]
        last = (why or said or [f"exit {proc.returncode}"])[-1]
        raise LooopError(f"{argv[0]} failed (exit {proc.returncode}): {last}")
    return said[-1] if said else ""


def push_and_open(ctx: Ctx, cfg: LandConfig, tree: Tree, tip: str, base: str) -> str:
    """Push the branch's tip, open the PR; the URL (the command's last line) or one line."""
    prog = cfg.pr_command[0]
    if shutil.which(prog, path=ctx.env.get("PATH")) is None:
        raise LooopError(
            f"{prog} is not on PATH — install it or set land.pr_command; nothing landed"
        )
    title, body = _body(ctx, tree, tip)
    existed = _remote_has(ctx, cfg, tree)
    ok, why = _push(ctx, cfg, tree, f"{tip}:refs/heads/{tree.branch}")
    if not ok:
        raise LooopError(
            f"the push of {tree.branch} to {cfg.remote} was refused: {why} — nothing landed"
        )
    body_file = ctx.paths.data / "reviews" / f"{tree.wid}.pr.md"
    store.atomic_write(body_file, body)
    fill = {
        "branch": tree.branch,
        "base": base,
        "title": title,
        "body": str(body_file),
        "remote": cfg.remote,
    }
    try:
        return _run_pr(ctx, cfg, pr_argv(cfg.pr_command, fill), tree.repo)
    except LooopError as e:
        if existed:
            raise LooopError(
                f"{e}; {tree.branch} stays pushed to {cfg.remote} as it was before"
            ) from None
        back, _ = _push(ctx, cfg, tree, f":refs/heads/{tree.branch}")
        left = (
            "the pushed branch was taken back"
            if back
            else f"{tree.branch} stays on {cfg.remote}: delete it"
        )
        raise LooopError(f"{e}; {left} — nothing landed") from None
    finally:
        store.remove(body_file)
