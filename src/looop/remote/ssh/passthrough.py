"""A verb the hot room serves (`looop shot`, `send`, `key`, `log`) for a worker on an SSH host:
the very argv runs there (its fast face too), its output streams here and its exit code is
this one's. The hot faces reach it through home/drive.py's one door; click's face runs the
same link (remote/ssh/link.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from looop.remote import hosts as reg
from looop.remote.ssh.link import Link, link_at


def run_there(argv: list[str], env: Mapping[str, str], data: str, sid: str) -> bool:
    """Run `argv` on the SSH host worker `sid` of the data dir `data` runs on: this does not
    return. False (click's turn): no such host, or a Kubernetes worker, whose backend
    click's face drives from here."""
    name = reg.host_of(Path(data), sid)
    if name is None:
        return False
    h = reg.lookup(Path(data), name)
    if not isinstance(h, reg.Host):
        return False
    lk = link_at(Path(data), h)
    raise SystemExit(Link(Path(data), h, dict(env), lk.bin).passthrough(argv))
