"""The remote wing as a start away (act/moves/far) and the pulse (loop/fleetwork, loop/daemon,
loop/diskcheck) reach it: one entry into the SSH and Kubernetes rooms (~85-210 ms), taken only
after the caller's own stat found hosts registered. A fleet without hosts never loads this;
the lighter callers (a worker's backend, the fleet's rows) import `remote/engine.py` alone."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from looop.core.context import Ctx
from looop.remote import dispatch as dispatch
from looop.remote import hosts
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
