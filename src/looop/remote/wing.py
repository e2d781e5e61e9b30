"""The remote wing as the pulse reaches it (loop/daemon, loop/fleetwork, once their own stat
found hosts registered): `looop down`'s kills and links, a far worker's bounds and verify. Every
other caller at home goes through `looop.remote.rooms()` (the engine, a start's way there)."""

from __future__ import annotations

import contextlib
import subprocess

from looop.core.context import Ctx
from looop.remote import hosts
from looop.remote.engine import kill_all as kill_all
from looop.remote.ssh import relay
from looop.remote.ssh.backend import check_bounds as check_bounds
from looop.remote.ssh.hostverify import run_far as run_far
from looop.remote.ssh.link import link


def stop_links(ctx: Ctx) -> None:
    """`looop down`: each SSH host's connection and the relay that brings its workers' verbs
    home (the next verb that reaches the host starts both again)."""
    data = ctx.paths.data
    for name in hosts.names(data):
        with contextlib.suppress(hosts.HostError, OSError, subprocess.SubprocessError):
            if isinstance(hosts.lookup(data, name), hosts.Host):
                link(ctx, name).stop_master()
        relay.stop(data, name)
