"""The remote wing as everything at home reaches it: one entry into the SSH and Kubernetes
rooms (~85-210 ms), taken only after the caller's own stat found hosts registered (through
`looop.remote.rooms()`, or the pulse's own imports). A fleet without hosts never loads this."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from looop.core.context import Ctx
from looop.remote import dispatch as dispatch
from looop.remote import engine, hosts
from looop.remote.engine import kill_all as kill_all
from looop.remote.ssh import relay
from looop.remote.ssh.backend import check_bounds as check_bounds
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


class Wing:
    """What a worker's backend, the fleet's rows, the beat's sessions probe and a start away
    take from the wing (`looop.remote.rooms()` hands this out)."""

    remote_of = staticmethod(engine.remote_of)
    remote_rows = staticmethod(engine.remote_rows)
    with_hosts = staticmethod(engine.with_hosts)
    dispatch = dispatch
    kind_of = staticmethod(kind_of)
