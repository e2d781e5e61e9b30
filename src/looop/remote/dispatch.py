"""Where a worker start goes once hosts are registered: the home, an SSH host's satellite, or
a Kubernetes host's Job. workers/launch.py asks here through the `Away` its caller hands
it (act/moves/workers.py hands this module): workers sit below the remote room."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looop.core.procstat import is_web
from looop.core.promptfile import substitute_prompt_file
from looop.core.webconfig import public_url
from looop.home import store
from looop.home.errors import CorruptState, LooopError
from looop.home.paths import Paths
from looop.home.sandboxpolicy import OFF, resolve
from looop.remote import bounds, tokens
from looop.remote import hosts as reg
from looop.remote.hosts import LOCAL, HostError
from looop.remote.kube import manifests as mf
from looop.remote.kube.backend import HostedKube, StartSpec
from looop.remote.kube.checkouts import note as pod_note
from looop.remote.kube.cluster import load_client
from looop.remote.repospec import RepoError, check_branch, check_url, is_host_path, shown
from looop.remote.ssh.backend import SshBackend, start_remote
from looop.sessions.state import SessionError, get_session, reap
from looop.workers import workspace
from looop.workers import worktree as wt
from looop.workers.boxed import with_note
from looop.workers.errors import WorkerError
from looop.workers.launch import WORKER_SIZE, contract_text, mcp_tools_on, plain_words
from looop.workers.mcpwire import wire
from looop.workers.started import Started, StartRequest
from looop.workers.treerecord import from_record

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.home.config import Config
    from looop.home.sandboxpolicy import SandboxPolicy
    from looop.sessions.state import Session


def place(
    ctx: Ctx,
    wid: str,
    host: str | None,
    local_live: int,
    max_workers: int,
    repo: str | None = None,
) -> str | None:
    """The host's name, or None for this machine. A remote worker of this id still running
    is refused, as a local one is. Without a host named, a repo decides first: a path names
    a folder on this machine (a host only when `host` names it), a URL is cloned by a host
    (the home makes worktrees of paths only)."""
    data = ctx.paths.data
    rec = reg.record(data, wid)
    if rec is not None and not rec.get("over"):
        raise HostError(
            f"worker {wid} is already running on host {rec['host']} — steer it "
            f"(`looop send {wid} …`) or stop it (`looop kill {wid}`) first"
        )
    if host is None:
        if not reg.names(data):
            return None
        if repo is not None and is_host_path(repo):
            return None
        host = reg.choose(data, local_live, max_workers, home=repo is None)
    if host == LOCAL:
        return None
    reg.check_room(data, reg.check_name(host))
    return host


def start_there(ctx: Ctx, host: str, req: StartRequest, cfg: Config) -> Started:
    """The start launch worked out (its line with {{prompt_file}} still in it, its sandbox
    resolved, `resumable` for the host's record) on `host`: an SSH host's satellite or a
    Kubernetes Job, with the home's bounds and MCP setting added here."""

    h = reg.lookup(ctx.paths.data, host)
    wid, runner = req.worker, req.runner or ""
    verify = req.verify.strip() if req.verify is not None and req.verify.strip() else None
    _check_place(h, host, wid, req, verify)
    policy = req.policy if req.policy is not None else resolve(None, None, cfg.sandbox)
    if policy.on and isinstance(h, reg.KubeHost):
        raise WorkerError(
            f"worker {wid}: the sandbox (srt) runs here or on an SSH host, not in a "
            f"Kubernetes pod — start it on host {host} with --no-sandbox (the pod is its wall)"
        )
    _refuse_if_here(ctx, wid)
    contract = contract_text(wid, runner)
    task = req.brief.rstrip("\n") + "\n"
    prompt_path = ctx.paths.prompts / f"{wid}.md"
    # bounded there as here (remote/bounds.py): its pod's limits, its session's on a host
    bounded = bounds.sent(ctx.knobs(cfg))
    req = req._replace(verify=verify, policy=policy, host=host, size=WORKER_SIZE, bounds=bounded)
    req = req._replace(mcp=mcp_tools_on(cfg))
    if isinstance(h, reg.KubeHost):
        brief = contract + pod_note(req.repos) + task  # several: where each clone is
        session = _start_in_job(ctx, h, req, brief, cfg)
        ctx.events.record("worker_started", id=wid, runner=runner, sandbox=False)
    else:
        session, branch_there = _start_on_host(ctx, host, req, contract, task)
        there: dict[str, Any] = {} if branch_there is None else {"branch": branch_there}
        ctx.events.record("worker_started", id=wid, runner=runner, sandbox=policy.on, **there)
    return Started(session, runner, str(prompt_path))


def _check_place(h: object, host: str, wid: str, req: StartRequest, verify: str | None) -> None:
    """No --verify on Kubernetes (a pod's Job shape checks its repos); on an SSH host each
    repo and the branch spelled right, and of several each a path there (a worktree of each
    side by side)."""
    if isinstance(h, reg.KubeHost):
        if verify is not None:
            raise WorkerError(
                f"worker {wid}: --verify runs on this machine only, or on an SSH host — not "
                f"on Kubernetes host {host}"
            )
        return
    several = req.repos if len(req.repos) > 1 else ()
    try:
        check_host_repo(host, req.repo, req.branch)
        for repo in several:
            check_host_repo(host, repo, None)  # a URL with credentials is never shown
            if not is_host_path(repo):
                raise WorkerError(
                    f"worker {wid}: of several repositories on host {host} each is the "
                    f"absolute path of a repository there, and {shown(repo)} is a URL — clone "
                    "it there first, or start one worker for it"
                )
    except RepoError as e:
        raise WorkerError(f"worker {wid}: {e}") from None


def _refuse_if_here(ctx: Ctx, wid: str) -> None:
    """A worker of that id alive on this machine: it cannot start elsewhere too."""

    try:
        here = get_session(ctx.paths.data, wid).alive
    except SessionError:
        here = False  # no local session of that id
    if here:
        raise WorkerError(f"worker {wid} is already running here — stop it first")


def check_host_repo(host: str, repo: str | None, branch: str | None) -> None:
    """What can be checked of an SSH host's repo at home, before anything crosses: a URL by
    the rules a Kubernetes clone follows too, a path's and a branch's spelling (whether the
    path is a repository is the host's to say). One line when not."""
    if repo is not None:
        if is_host_path(repo):
            if len(repo) > 4096 or any(not c.isprintable() for c in repo):
                raise RepoError("the repo path holds control characters, or is over 4096")
        else:
            check_url(repo, f"host {host}", f"or give an absolute path of a repository on {host}")
    if branch is not None:
        check_branch(branch)


def _start_on_host(
    ctx: Ctx, host: str, req: StartRequest, contract: str, task: str
) -> tuple[Session, str | None]:
    """A worker on an SSH host's satellite, in the checkout it makes there when it has a
    repo; its verify kept at home (workers/verify.py runs it there once it is over). The
    last worker of this id ends here first, as a local start ends it (worktree.end_generation);
    the session and its branch there."""

    wid = req.worker
    policy = req.policy if req.policy is not None else OFF
    _end_last_here(ctx, wid)
    contract = _keep_brief(ctx, wid, contract, task, policy)
    apart = req.repo is not None  # a checkout's note joins the contract there: sent apart
    session, trees = start_remote(
        ctx, host, req, task if apart else contract + task, contract if apart else None
    )
    if apart:
        _keep_checkout_note(ctx, host, wid, contract, task, trees, max(1, len(req.repos)))
    if req.verify is not None:  # after the start: a verify never meets the last worker of this id
        _keep_verify(ctx, host, wid, req.verify)
    return session, (str(trees[0]["branch"]) if trees else None)


def _end_last_here(ctx: Ctx, wid: str) -> None:
    """The last worker of this id, ended as a local start ends it (its corpse, its checkout)."""

    clean = wt.leftover(ctx, wid) if wt.left_behind(ctx, wid) else None
    reap(ctx.paths.data, wid)  # a local corpse of this id: one row per id in `ls`
    wt.end_generation(ctx, wid, clean)


def _keep_brief(ctx: Ctx, wid: str, contract: str, task: str, policy: SandboxPolicy) -> str:
    """The home keeps what it sends; the contract as it reads where the worker runs."""

    if policy.on:  # the brief as it reads inside srt, there as here
        contract = with_note(contract, wid)
    store.atomic_write(ctx.paths.prompts / f"{wid}.md", contract + task)
    return contract


def _keep_checkout_note(
    ctx: Ctx,
    host: str,
    wid: str,
    contract: str,
    task: str,
    trees: list[dict[str, Any]],
    asked: int,
) -> None:
    """The brief kept at home names the checkouts the host made; a host that made none, or
    fewer than the `asked` repositories (an older looop), has its worker stopped and the
    start refused."""

    got = [t for t in (from_record(raw) for raw in trees) if t is not None]
    if len(got) != len(trees) or len(got) < asked:
        _undo_start(ctx, host, wid)
        what = "a checkout of each repository" if asked > 1 else "a checkout"
        raise WorkerError(
            f"worker {wid}: the looop on host {host} is older and makes no {what} — "
            f"run `looop host install {host}`"
        )
    note = workspace.with_note(contract, got, os.path.dirname(got[0].path.rstrip("/")))
    store.atomic_write(ctx.paths.prompts / f"{wid}.md", note + task)


def _keep_verify(ctx: Ctx, host: str, wid: str, verify: str) -> None:

    try:
        store.atomic_write(ctx.paths.verify / f"{wid}.cmd", verify + "\n")
    except OSError as e:
        _undo_start(ctx, host, wid)
        raise SessionError(f"worker {wid}: cannot keep its verify: {e.strerror}") from e


def _undo_start(ctx: Ctx, host: str, wid: str) -> None:
    """A worker just started that must not run after all: stopped on its host."""

    try:
        SshBackend(ctx, host).kill(wid)
    except LooopError:
        pass


def _start_in_job(ctx: Ctx, h: reg.KubeHost, req: StartRequest, brief: str, cfg: Config) -> Session:
    """A worker as a Job on a Kubernetes host: its line names the brief where the pod mounts
    it; every input of its Job is checked (one line each) and the client found before the
    home writes anything (the brief it keeps, the token it mints, its record: written first,
    remote/hosts.starting)."""

    wid, data, runner = req.worker, ctx.paths.data, req.runner or ""
    line = substitute_prompt_file(req.line, Path(f"{mf.PROMPTS_DIR}/{wid}.md"))
    env = req.env_additions()
    if req.mcp:
        line = wire(line, env, None)  # the server runs as the pod's own "$LOOOP_BIN"
    argv = plain_words(line) or ["bash", "-c", line]  # the pod's PATH finds the program
    spec = StartSpec(wid, argv, Path(mf.WORKSPACE), env, req.size)
    try:
        url = way_home(data, cfg.raw, wid)
        b = HostedKube(data, h, ctx.clock, ctx.env, url, None, req.bounds)
        shape = b.shape(spec, brief, req.repo, req.branch, req.repos)
        mf.contract_secret(shape, url, "lw1.checked-shape-only")
        load_client()
    except LooopError as e:
        said = str(e)
        raise WorkerError(
            said if said.startswith(f"worker {wid}") else f"worker {wid}: {said}"
        ) from None
    store.atomic_write(ctx.paths.prompts / f"{wid}.md", brief)  # the home keeps what it sent
    b.home_token = tokens.mint(ctx.paths, wid)
    with reg.starting(data, wid, h.name, runner):
        try:
            s = b.start(spec, brief, req.repo, req.branch, req.repos)
        except LooopError as e:
            raise SessionError(f"worker {wid} did not start on host {h.name}: {e}") from None
    reg.write_record(data, wid, h.name, started_at=s.started_at, runner=runner, over=False)
    return s


def way_home(data: Path, raw_config: dict[str, Any], wid: str) -> str:
    """The URL a pod speaks its contract to: the config's `web.url`, else a running
    `looop web`'s; neither is a refusal in one line."""
    url = public_url(raw_config) or _web_url(data)
    if url is None:
        raise LooopError(
            f"worker {wid}: a Kubernetes worker needs the way home — set `web.url` in the "
            "config to the address its pod reaches this home's web API at, or run `looop web`"
        )
    return url


def _web_url(data: Path) -> str | None:
    """The URL a running `looop web` of this data dir listens at: its runtime record
    (`.lock/web.json`, which web/server.py writes), believed only while its pid is still a
    `looop web`."""
    try:
        rec = store.read_json_object(Paths.at(data).lock_dir / "web.json") or {}
    except (CorruptState, OSError):
        return None
    pid, url = rec.get("pid"), rec.get("url")
    if type(pid) is not int or not isinstance(url, str) or not url.startswith("http"):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return url if is_web(f.read()) else None
    except OSError:
        return None
