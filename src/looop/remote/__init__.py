"""Workers away from home: on an SSH host (`ssh/`) or as a Kubernetes Job (`kube/`), the two
never importing each other. What both share lives here: the host registry and placement
(`hosts.py`), where a start goes (`dispatch.py`), each remote worker's backend and rows
(`engine.py`), the worker side's call home (`callhome.py`, `boxdoor.py`, `shim.py`), per-worker
tokens (`tokens.py`), the repo URL rules (`repospec.py`). Everything at home but the pulse
reaches the rooms through `rooms()` below (a start away: its `away`), once its own stat
found hosts. Local worker lifecycle stays in `workers/`, which never imports this room."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from looop.home import where
from looop.home.clock import Clock

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.remote.engine import Engine
    from looop.workers.backend import Backend


def rooms() -> type[Engine]:
    """The door into the SSH and Kubernetes rooms and a start's way there, for a caller whose
    own stat found hosts registered: a home without hosts never loads them."""
    # lazy: the SSH and Kubernetes rooms (~70-120 ms), for a home with hosts only
    from looop.remote.engine import Engine

    return Engine


def worker_away(
    data: str, env: Mapping[str, str], clock: Clock, wid: str, ctx: Ctx | None = None
) -> Backend | None:
    """The backend of a worker on another host, SSH or Kubernetes (None: it runs here):
    one stat first, so a verb or move on a worker here never loads the rooms away. `ctx`:
    the caller's, when it has one."""
    if not os.path.exists(where.host_record(data, wid)):
        return None
    if ctx is None:
        return rooms().remote_at(env, clock, wid)
    return rooms().remote_of(ctx, wid)
