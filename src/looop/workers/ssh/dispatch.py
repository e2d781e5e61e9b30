"""Where a worker start goes once hosts are registered (workers/launch.py asks here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looop.workers.ssh import hosts as reg
from looop.workers.ssh import place as placement
from looop.workers.ssh.hosts import LOCAL, HostError

if TYPE_CHECKING:
    from looop.core.config import Config
    from looop.core.context import Ctx
    from looop.core.sandboxpolicy import SandboxPolicy
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
) -> Started:
    # lazy: only this path needs it (keeps the verbs that skip it light)
    from looop.core import store
    from looop.core.sandboxpolicy import resolve
    from looop.sessions.state import SessionError, get_session
    from looop.workers.launch import WORKER_SIZE, Started, WorkerError, contract_text
    from looop.workers.ssh.remote import start_remote

    if repo is not None:
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
    store.atomic_write(prompt_path, brief)  # the home keeps what it sent
    session = start_remote(ctx, host, wid, template, brief, runner, WORKER_SIZE)
    ctx.events.record("worker_started", id=wid, runner=runner, sandbox=False)
    return Started(session, runner, str(prompt_path))
