"""Where a worker start goes once hosts are registered (workers/launch.py asks here): the
home, an SSH host's satellite, or a Kubernetes host's Job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.workers.ssh import hosts as reg
from looop.workers.ssh import place as placement
from looop.workers.ssh.hosts import LOCAL, HostError

if TYPE_CHECKING:
    from looop.core.config import Config
    from looop.core.context import Ctx
    from looop.core.sandboxpolicy import SandboxPolicy
    from looop.sessions.state import Session
    from looop.workers.launch import Started


def place(ctx: Ctx, wid: str, host: str | None, local_live: int, max_workers: int) -> str | None:
    """The host's name, or None for this machine. A remote worker of this id still running
    is refused, as a local one is."""
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
        host = placement.choose(data, local_live, max_workers)
    if host == LOCAL:
        return None
    placement.check_room(data, reg.check_name(host))
    return host


def start_there(
    ctx: Ctx,
    host: str,
    wid: str,
    template: str,
    prompt: str,
    runner: str,
    repo: str | None,
    sandbox: SandboxPolicy | None,
    runner_sandbox: SandboxPolicy | None,
    cfg: Config,
    branch: str | None = None,
) -> Started:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.core import store
    from looop.core.sandboxpolicy import resolve
    from looop.sessions.state import SessionError, get_session
    from looop.workers.launch import WORKER_SIZE, Started, WorkerError, contract_text
    from looop.workers.ssh.remote import start_remote

    h = reg.lookup(ctx.paths.data, host)
    if repo is not None and not isinstance(h, reg.KubeHost):
        raise WorkerError(f"worker {wid}: --repo runs on this machine only, not on host {host}")
    if resolve(sandbox, runner_sandbox, cfg.sandbox).on:
        raise WorkerError(
            f"worker {wid}: the sandbox (srt) runs on this machine only — start it on host "
            f"{host} with --no-sandbox, or here"
        )
    try:
        here = get_session(ctx.paths.data, wid).alive
    except SessionError:
        here = False  # no local session of that id
    if here:
        raise WorkerError(f"worker {wid} is already running here — stop it first")
    brief = contract_text(wid, runner) + prompt.rstrip("\n") + "\n"
    prompt_path = ctx.paths.prompts / f"{wid}.md"
    if isinstance(h, reg.KubeHost):
        session = _start_in_job(ctx, h, wid, template, brief, runner, repo, branch, cfg)
    else:
        store.atomic_write(prompt_path, brief)  # the home keeps what it sent
        session = start_remote(ctx, host, wid, template, brief, runner, WORKER_SIZE)
    ctx.events.record("worker_started", id=wid, runner=runner, sandbox=False)
    return Started(session, runner, str(prompt_path))


def _start_in_job(
    ctx: Ctx,
    h: reg.KubeHost,
    wid: str,
    template: str,
    brief: str,
    runner: str,
    repo: str | None,
    branch: str | None,
    cfg: Config,
) -> Session:
    """A worker as a Job on a Kubernetes host: its line names the brief where the pod mounts
    it; everything is checked (and the client found) before the home writes anything."""
    # lazy: only a Kubernetes start loads the engine
    from pathlib import Path

    from looop.core import store
    from looop.core.config import substitute_prompt_file
    from looop.core.errors import LooopError
    from looop.workers import scoped
    from looop.workers.backend import StartSpec
    from looop.workers.kube import hosted
    from looop.workers.kube import manifests as mf
    from looop.workers.launch import WORKER_SIZE, WorkerError, plain_words

    pod_brief = f"{mf.PROMPTS_DIR}/{wid}.md"
    line = substitute_prompt_file(template, Path(pod_brief))
    argv = plain_words(line) or ["bash", "-c", line]  # the pod's PATH finds the program
    env = {"LOOOP_SESSION_ID": wid, "LOOOP_RUNNER": runner}
    try:
        url = hosted.way_home(ctx.paths, cfg.raw, wid)
        hosted.precheck(h, ctx.paths.data, wid, argv, brief, env, WORKER_SIZE, repo, branch, url)
    except LooopError as e:
        said = str(e)
        raise WorkerError(
            said if said.startswith(f"worker {wid}") else f"worker {wid}: {said}"
        ) from None
    store.atomic_write(ctx.paths.prompts / f"{wid}.md", brief)  # the home keeps what it sent
    spec = StartSpec(wid, argv, Path(mf.WORKSPACE), env, WORKER_SIZE)
    token = scoped.mint(ctx.paths, wid)
    return hosted.start_job(
        ctx.paths.data, ctx.clock, ctx.env, h, spec, brief, runner, repo, branch, url, token
    )
