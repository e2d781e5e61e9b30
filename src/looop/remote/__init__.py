"""Workers away from home: on an SSH host (`ssh/`) or as a Kubernetes Job (`kube/`), the two
never importing each other. What both share lives here: the host registry and placement
(`hosts.py`), where a start goes (`dispatch.py`), each remote worker's backend and rows
(`engine.py`), the worker side's call home (`callhome.py`, `boxdoor.py`, `shim.py`), per-worker
tokens (`tokens.py`), the repo URL rules (`repospec.py`). Everything at home reaches the rooms
through `rooms()` below, once its own stat found hosts. Local worker lifecycle stays in
`workers/`, which never imports this room."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.remote.wing import Wing


def rooms() -> type[Wing]:
    """The one door into the SSH and Kubernetes rooms, for a caller whose own stat found
    hosts registered: a home without hosts never loads them."""
    # lazy: the SSH and Kubernetes rooms (~85-210 ms), for a home with hosts only
    from looop.remote.wing import Wing

    return Wing
