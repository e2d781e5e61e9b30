"""The remote wing as the beat, its moves, `down` and the session verbs reach it: one entry, so
each caller below (act/moves/far, sense/probes, loop/fleetwork, loop/daemon, loop/diskcheck,
cli/sessions) has one door into the SSH and Kubernetes rooms (~85-210 ms), taken only after
its own stat found hosts registered. A fleet without hosts never loads this; one with hosts
loads it whole (~1 ms more than one part)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from looop.core.context import Ctx
from looop.remote import dispatch as dispatch
from looop.remote import hosts
from looop.remote.engine import host_of
from looop.remote.engine import kill_all as kill_all
from looop.remote.engine import remote_of as remote_of
from looop.remote.engine import with_hosts as with_hosts
from looop.remote.kube.backend import HostedKube
from looop.remote.ssh import relay
from looop.remote.ssh.backend import check_bounds as check_bounds
from looop.remote.ssh.backend import forward
from looop.remote.ssh.hostverify import run_far as run_far
from looop.remote.ssh.link import link


def kind_of(data: Path, name: str) -> str:
    """A registered host's kind (ssh, k8s); "" when none of that name is readable."""
    return hosts.host_kind(data, name) or ""


def stop_links(ctx: Ctx) -> None:
    """`looop down`: each SSH host's connection and the relay that brings its workers' verbs
    home (the next verb that reaches the host starts both again)."""
    data = ctx.paths.data
    for name in hosts.names(data):
        with contextlib.suppress(hosts.HostError, OSError, subprocess.SubprocessError):
            if isinstance(hosts.lookup(data, name), hosts.Host):
                link(ctx, name).stop_master()
        relay.stop(data, name)


def far_session(ctx: Ctx, sid: str, argv: list[str], tty: bool) -> HostedKube | None:
    """A session verb's worker away from home: in a Kubernetes Job its backend, which the verb
    drives from home; on an SSH host the verb runs there and its exit code is this one's
    (SystemExit: this does not return). None: no host has it."""
    h = host_of(ctx.paths.data, sid)
    if isinstance(h, hosts.KubeHost):
        return HostedKube(ctx.paths.data, h, ctx.clock, ctx.env, ctx=ctx)
    code = forward(ctx, sid, argv, tty)
    if code is not None:
        raise SystemExit(code)
    return None
