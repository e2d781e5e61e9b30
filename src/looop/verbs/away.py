"""A worker away from home as the fast faces of `shot`, `send`, `key` and `log` meet it: a
worker on an SSH host gets the very verb run there (remote/ssh/passthrough.py)."""

from __future__ import annotations

from looop.home.drive import data_dir, remote_record
from looop.home.sessionfiles import live

TYPE_CHECKING = False  # a human or a script runs these often: no typing
if TYPE_CHECKING:
    from collections.abc import Mapping


def live_here(argv: list[str], env: Mapping[str, str], sid: str) -> str | None:
    """The data dir when `sid` is a session of it that runs now. A worker on an SSH host gets
    the verb there (this does not return); None: click's turn."""
    data = data_dir(env)
    if remote_record(data, sid):
        run_far(argv, env, data, sid)
        return None
    return data if live(data, sid) is True else None


def run_far(argv: list[str], env: Mapping[str, str], data: str, sid: str) -> bool:
    """A worker on an SSH host: the very verb runs there (its fast face too), its output
    streams here and its exit code is this one's — this does not return. False (click's
    turn): a Kubernetes worker, whose backend click's face drives from here."""
    # lazy: the remote wing's door: only a worker on another host needs its link
    from looop.remote.ssh.passthrough import run_there

    return run_there(argv, env, data, sid)
