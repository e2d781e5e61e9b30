"""Workers away from home: on an SSH host (`ssh/`) or as a Kubernetes Job (`kube/`), the two
never importing each other. What both share lives here: the host registry and placement
(`hosts.py`), where a start goes (`dispatch.py`), each remote worker's backend and rows
(`engine.py`), the worker side's call home (`callhome.py`, `boxdoor.py`, `shim.py`), per-worker
tokens (`tokens.py`), the repo URL rules (`repospec.py`). Everything at home but the pulse
reaches the rooms through `rooms()` below (a start away: `dispatcher()`), once its own stat
found hosts. Local worker lifecycle stays in `workers/`, which never imports this room."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.remote.engine import Engine
    from looop.workers.started import Away


def rooms() -> type[Engine]:
    """The door into the SSH and Kubernetes rooms, for a caller whose own stat found hosts
    registered: a home without hosts never loads them."""
    # lazy: the SSH and Kubernetes rooms (~60-110 ms), for a home with hosts only
    from looop.remote.engine import Engine

    return Engine


def dispatcher() -> Away:
    """Where a start whose host is not here goes (remote/dispatch.py), for a start that found
    hosts registered: it loads the start's machinery away besides the rooms."""
    # lazy: the rooms and a start's way there (~+20 ms over rooms()), for a start away only
    from looop.remote import dispatch

    return dispatch
