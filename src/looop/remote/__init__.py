"""Workers away from home: on an SSH host (`ssh/`) or as a Kubernetes Job (`kube/`), the two
never importing each other. What both share lives here: the host registry and placement
(`hosts.py`), where a start goes (`dispatch.py`), each remote worker's backend
(`engine.py`), sys-sessions with hosts (`probe.py`), the home's answer to a worker's contract
verb (`answer.py`) and the worker side's call home (`callhome.py`), per-worker tokens
(`tokens.py`), the repo URL rules (`repospec.py`); `wing.py` is the one entry a start away and
the pulse reach them through, `remote_engine()` below the one every lighter room takes. Local
worker lifecycle stays in `workers/`, which never imports this room."""

from __future__ import annotations

from types import ModuleType


def remote_engine() -> ModuleType:
    """remote/engine.py: the one door to the workers away — `ls`'s rows, the beat's
    sys-sessions, a session verb's worker, a move's backend — each caller's own stat having
    found hosts registered, so a home without hosts never loads the SSH and Kubernetes rooms."""
    # lazy: the SSH and Kubernetes rooms (25-45 ms of CPU; the wing ~10 more), for workers away
    import looop.remote.engine as engine

    return engine
