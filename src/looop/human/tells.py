"""`looop told [WORKER]`: the work of both faces (the click-free one here, `serve`, and the
click command in cli/mailbox.py). `looop tell` is human/tellsend.py: it reads a session and
writes an event, which `told` does not (no fcntl, no event log)."""

from __future__ import annotations

import os

from looop.home import where
from looop.home.errors import LooopError
from looop.home.plain import echo
from looop.human.tellbox import check_worker, take_tells

TYPE_CHECKING = False  # workers call `looop told` often: no typing

if TYPE_CHECKING:
    from collections.abc import Mapping


def run_told(worker: str | None, env: Mapping[str, str]) -> None:
    data = where.resolve(env, os.getcwd())[0]
    who = worker or env.get("LOOOP_SESSION_ID", "")
    if not who:
        raise LooopError("name the worker (`looop told WORKER`) or run it inside a worker")
    check_worker(who, "worker id" if worker else "LOOOP_SESSION_ID")
    for msg in take_tells(os.path.join(data, where.TELLS), who):
        echo(msg)


def parse_told(argv: list[str]) -> tuple[str | None] | None:
    """(worker,) for `told` and `told WORKER`; None (click's turn) for anything else."""
    rest = argv[1:]
    if len(rest) > 1 or (rest and rest[0].startswith("-")):
        return None
    return (rest[0] if rest else None,)


def serve(argv: list[str], env: Mapping[str, str], now: float) -> bool:
    """`told [WORKER]` in its plain spellings, run; False: click's."""
    told = parse_told(argv)
    if told is not None:
        run_told(*told, env)
    return told is not None
