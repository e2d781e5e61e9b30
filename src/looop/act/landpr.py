"""A landing as a pull request: the worker's branch pushed to the configured remote, then the
configured command (gh, glab, …) opens the request, each within its time limit. A PR command
that fails or hangs takes back a branch the push made, so nothing is left half-landed.

The config's "land" object: how `looop land` lands a worker's change — "merge": "ff" (a
fast-forward, the default) or "merge" (a merge commit); "remote" the branch is pushed to for a
pull request ("origin"); "pr_command" the command that opens one, its words {branch}, {base},
{title}, {body} (a file), {remote} and {repo} (the remote's URL) filled in (never through a
shell); "pr_edit_command" the command that rewrites an open request's body ({url}, {body}: a
worker of several repositories has each request link the others); "pr_timeout_s" how long
the push and each command may take. Read when a landing runs; a bad value is one line."""

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Sequence
from typing import Any, NamedTuple

from looop.core.context import Ctx
from looop.core.text import one_line
from looop.home import store
from looop.home.errors import LooopError
from looop.home.where import program_on
from looop.workers import reviewgit
from looop.workers.review import summary_of
from looop.workers.reviewgit import Commit
from looop.workers.treerecord import Tree, git_env, run_git, why_failed

_KEEP = 64 * 1024  # bytes of the PR command's output kept
Body = tuple[str, str, str]  # a request body's text, its worker, its repository's folder

DEFAULT_PR = "gh pr create --head {branch} --base {base} --title {title} --body-file {body}"
DEFAULT_PR_EDIT = "gh pr edit {url} --body-file {body}"
_WORD = re.compile(r"\{(branch|base|title|body|remote|url|repo)\}")


class LandConfig(NamedTuple):
    merge: str = "ff"
    remote: str = "origin"
    pr_command: tuple[str, ...] = tuple(shlex.split(DEFAULT_PR))
    pr_timeout_s: float = 120.0
    pr_edit_command: tuple[str, ...] = tuple(shlex.split(DEFAULT_PR_EDIT))


def _bad(key: str, want: str, got: object) -> LooopError:
    return LooopError(f"config: land.{key} must be {want}, not {got!r} — fix the config")


def land_config(raw: dict[str, Any]) -> LandConfig:
    obj = raw.get("land", {})
    if not isinstance(obj, dict):
        raise LooopError(f"config: 'land' must be an object, not {obj!r} — fix the config")
    out = LandConfig()
    merge = obj.get("merge", out.merge)
    if merge not in ("ff", "merge"):
        raise _bad("merge", '"ff" or "merge"', merge)
    remote = obj.get("remote", out.remote)
    if not isinstance(remote, str) or not remote or remote.startswith("-"):
        raise _bad("remote", "a remote's name", remote)
    words = _line(obj, "pr_command", DEFAULT_PR)
    edit = _line(obj, "pr_edit_command", DEFAULT_PR_EDIT)
    limit = obj.get("pr_timeout_s", out.pr_timeout_s)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 1 <= limit <= 3600:
        raise _bad("pr_timeout_s", "seconds from 1 to 3600", limit)
    return LandConfig(merge, remote, words, float(limit), edit)


def _line(obj: dict[str, Any], key: str, default: str) -> tuple[str, ...]:
    line = obj.get(key, default)
    try:
        words = tuple(shlex.split(line)) if isinstance(line, str) else ()
    except ValueError:
        words = ()
    if not words:
        raise _bad(key, "a command line (e.g. " + default + ")", line)
    return words


def pr_argv(words: tuple[str, ...], fill: dict[str, str]) -> list[str]:
    """The PR command's argv: each word with its {…} filled in, never split again."""
    # one pass: a title holding "{body}" stays the title
    return [_WORD.sub(lambda m: fill[m.group(1)], word) for word in words]


# how the user's git reaches a remote over SSH: theirs to say, kept where git_env drops
# every other GIT_* variable (those could point git at another repository)
_TRANSPORT = ("GIT_SSH_COMMAND", "GIT_SSH", "GIT_SSH_VARIANT")
# git's closing words after a transport failed: they say nothing of why
_BOILERPLATE = (
    "Please make sure you have the correct access rights",
    "and the repository exists.",
    "fatal: Could not read from remote repository.",
    "error: failed to push some refs to",
)


def remote_env(ctx: Ctx) -> dict[str, str]:
    env = git_env(ctx.env)
    env.update({k: ctx.env[k] for k in _TRANSPORT if ctx.env.get(k)})
    return env


def why_remote(done: subprocess.CompletedProcess[str]) -> str:
    """Why a push or ls-remote failed, in one line: what the remote said (its hook's words,
    `remote: …`) and git's verdict on the ref, or ssh's own error — never git's closing
    boilerplate alone."""
    said = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
    told = [ln.removeprefix("remote:").strip() for ln in said if ln.startswith("remote:")]
    told = [t for t in told if t]
    rejected = [
        ln.split("\t")[-1].strip() for ln in (done.stdout or "").splitlines() if ln.startswith("!")
    ]
    rest = [ln for ln in said if not ln.startswith(("remote:", "To ", *_BOILERPLATE))]
    parts = [*told[-2:], *rejected[:1]] or rest[:1]
    return one_line("; ".join(parts), 300) if parts else why_failed(done)


def remote_git(
    ctx: Ctx, cwd: str, verb: str, remote: str, *args: str, timeout: float
) -> tuple[bool, str, str]:
    """A fetch, push or ls-remote of `remote` from the checkout at `cwd`, its last word the
    ref spec: (ok, stdout, why not)."""
    *flags, spec = args
    argv = ["git", "--no-pager", "-C", cwd, verb, *flags, remote, spec]
    done = run_git(argv, remote_env(ctx), timeout, f"git {verb} in {cwd}")
    return done.returncode == 0, done.stdout.strip(), why_remote(done)


def push_branch(
    ctx: Ctx, cwd: str, remote: str, tip: str, head: str, timeout: float, said: str = ""
) -> bool:
    """`tip` pushed to `remote` (`said`: how a refusal names it) as branch `head`; whether
    that branch was there before (a failed request then leaves it as it was)."""
    ls = ("ls-remote", remote, "--heads", f"refs/heads/{head}")
    ok, out, why = remote_git(ctx, cwd, *ls, timeout=timeout)
    if not ok:
        raise LooopError(f"the remote {said or remote} cannot be read: {why} — nothing landed")
    spec = f"{tip}:refs/heads/{head}"
    ok, _, why = remote_git(ctx, cwd, "push", remote, "--porcelain", spec, timeout=timeout)
    if not ok:
        raise LooopError(f"the push of {head} to {remote} was refused: {why} — nothing landed")
    return bool(out)


def remote_url(ctx: Ctx, cfg: LandConfig, tree: Tree) -> str:
    """The configured remote's URL ({repo} in the PR command), else its name."""
    argv = ["git", "-C", tree.repo, "remote", "get-url", cfg.remote]
    done = run_git(argv, remote_env(ctx), cfg.pr_timeout_s, f"git remote in {tree.repo}")
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else cfg.remote


def _body(ctx: Ctx, tree: Tree, tip: str, links: str = "") -> tuple[str, str]:
    commits = reviewgit.commits(ctx, tree, tree.base, tip)
    return request_text(tree.wid, tree.branch, commits, links, summary_of(ctx, tree.wid)[0])


def request_text(
    wid: str, branch: str, commits: Sequence[Commit], links: str, summary: str, where: str = ""
) -> tuple[str, str]:
    """A request's title and body: the commits, the worker's other repositories' requests
    (`links`), then the worker's own report (`summary`)."""
    title = commits[0].subject if len(commits) == 1 else f"{branch} (looop worker {wid})"
    lines = [f"Landed from looop worker `{wid}` (branch `{branch}`{where}).", ""]
    lines += [f"- {c.sha[:12]} {c.subject}" for c in commits]
    if links:
        lines += ["", links.rstrip()]
    if summary:
        lines += ["", summary.rstrip()]
    return title, "\n".join(lines) + "\n"


def run_with_body(
    ctx: Ctx, cfg: LandConfig, words: tuple[str, ...], fill: dict[str, str], body: Body, cwd: str
) -> str:
    """A PR command run with {body} a file holding `body` (text, worker, repository folder),
    removed after."""
    text, wid, part = body
    path = ctx.paths.data / "reviews" / (f"{wid}.{part}.pr.md" if part else f"{wid}.pr.md")
    store.atomic_write(path, text)
    try:
        return run_pr(ctx, cfg, pr_argv(words, {**fill, "body": str(path)}), cwd)
    finally:
        store.remove(path)


def tell_others(ctx: Ctx, cfg: LandConfig, fill: dict[str, str], body: Body, cwd: str) -> None:
    """An open request's body rewritten (land.pr_edit_command) to link the others; a failed
    edit is said (the requests stay open, their bodies naming each repository and branch)."""
    _, wid, part = body
    try:
        run_with_body(ctx, cfg, cfg.pr_edit_command, fill, body, cwd)
    except LooopError as e:
        ctx.events.emit(
            "warn",
            "land.relink",
            f"worker {wid}: the pull request of repo {part} ({fill['url']}) could not be told "
            f"the others' addresses: {e} — add them by hand",
            session=wid,
        )


def run_pr(ctx: Ctx, cfg: LandConfig, argv: list[str], cwd: str) -> str:
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


def push_and_open(
    ctx: Ctx, cfg: LandConfig, tree: Tree, tip: str, base: str, links: str = ""
) -> str:
    """Push the branch's tip, open the PR; the URL (the command's last line) or one line.
    `links`: what its body says of the worker's other repositories' requests."""
    prog = cfg.pr_command[0]
    if program_on(prog, ctx.env.get("PATH")) is None:
        raise LooopError(
            f"{prog} is not on PATH — install it or set land.pr_command; nothing landed"
        )
    title, body = _body(ctx, tree, tip, links)
    on = f"{cfg.remote} of {tree.repo}"
    existed = push_branch(ctx, tree.repo, cfg.remote, tip, tree.branch, cfg.pr_timeout_s, on)
    fill = {"branch": tree.branch, "base": base, "title": title, "remote": cfg.remote,
            "repo": remote_url(ctx, cfg, tree), "url": ""}  # fmt: skip
    try:
        return run_with_body(ctx, cfg, cfg.pr_command, fill, (body, tree.wid, tree.part), tree.repo)
    except LooopError as e:
        if existed:
            raise LooopError(
                f"{e}; {tree.branch} stays pushed to {cfg.remote} as it was before"
            ) from None
        drop = ("push", cfg.remote, "--porcelain", f":refs/heads/{tree.branch}")
        back = remote_git(ctx, tree.repo, *drop, timeout=cfg.pr_timeout_s)[0]
        left = (
            "the pushed branch was taken back"
            if back
            else f"{tree.branch} stays on {cfg.remote}: delete it"
        )
        raise LooopError(f"{e}; {left} — nothing landed") from None


def links(tree: Tree, trees: list[Tree], urls: list[str]) -> str:
    """What the request of `tree` says of the worker's others: each repository and branch,
    with its request's address once it is open (`urls`: of those opened so far)."""
    lines = [f"One change across {len(trees)} repositories (looop worker `{tree.wid}`):"]
    for n, other in enumerate(trees):
        if other is tree:
            state = "this pull request"
        elif n < len(urls):
            state = urls[n] or "opened"
        else:
            state = "its pull request follows"
        lines.append(f"- `{other.part}` ({other.repo}), branch `{other.branch}`: {state}")
    return "\n".join(lines) + "\n"


def relink(
    ctx: Ctx, cfg: LandConfig, trees: list[Tree], opened: list[tuple[str, str, str]]
) -> None:
    """Every request opened before the last is told the addresses of those opened after it
    (land.pr_edit_command), so each body links all the others. A failed edit is said (the
    requests stay open; their bodies name each repository and branch). `opened`: each
    request's address, the tip pushed and its base."""
    urls = [url for url, _, _ in opened]
    for tree, (url, tip, base) in list(zip(trees, opened, strict=True))[:-1]:
        _, body = _body(ctx, tree, tip, links(tree, trees, urls))
        fill = {"url": url, "branch": tree.branch, "base": base, "title": "",
                "remote": cfg.remote, "repo": remote_url(ctx, cfg, tree)}  # fmt: skip
        tell_others(ctx, cfg, fill, (body, tree.wid, tree.part), tree.repo)
